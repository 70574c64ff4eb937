"""The search planner's sources bound to real backends: SQL for the filter, a vector store for
similarity, an embedding model for the query vector."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from mmdm.query import Const, Node, Query, UnsupportedFeatureError, compile_sql, compile_where
from mmdm.query.ast import Semantic

from .errors import AdapterError, NotSupportedError
from .jobs.common import ImageLoader
from .metadata import MetadataStore
from .storage.roots import within_any
from .models.base import Embedder, ImageInput, l2_normalise
from .vectors.base import NativeFilter, VectorStore


def joined_filter(store: MetadataStore, vector_store: VectorStore | None, query: Query,
                  dataset_id: str, version: str) -> tuple[str, dict[str, Any]] | None:
    """The query's filter as SQL for a vector store that joins the metadata (None otherwise)."""
    if not getattr(vector_store, "joins_metadata", False):
        return None
    where, params = compile_where(query, store.dialect, dataset_id, version)
    return where.sql(dialect=store.dialect), params


class SqlFilter:
    """A query's filter over one dataset version, as the planner's ``FilterSource``."""

    def __init__(self, store: MetadataStore, query: Query, dataset_id: str, version: str):
        self.store, self.scope = store, (dataset_id, version)
        # Listing ids for the planner is in key order whatever the query's SortBy says.
        self.query = Query(query.filter, options={"Status": query.option("Status", "ACTIVE")})

    def _run(self, **kw: Any) -> list[tuple]:
        compiled = compile_sql(self.query, self.store.dialect, *self.scope, **kw)
        return self.store.fetchall(compiled.sql, compiled.params)

    def count(self, limit: int) -> int:
        return int(self._run(count=True, limit=limit)[0][0])

    def ids(self, after: int | None, limit: int) -> list[tuple[int, str]]:
        return [(int(r[0]), str(r[1])) for r in self._run(limit=limit, after=after)]

    def restrict(self, file_meta_ids: list[str]) -> dict[str, int]:
        if not file_meta_ids:
            return {}
        return {str(r[1]): int(r[0]) for r in self._run(file_meta_ids=file_meta_ids)}


def native_compiler(store: VectorStore) -> Callable[[Node], NativeFilter] | None:
    """How to express a pushable filter in the store's own language (None: it cannot).

    Checked through ``sys.modules`` so a plain search never imports pymilvus or the ES client:
    a store of either class exists only if its module was imported.
    """
    milvus = sys.modules.get("mmdm.adapters.vectors.milvus")
    if milvus is not None and isinstance(store, milvus.MilvusVectorStore):
        from mmdm.query.compile.milvus import compile_milvus

        return lambda node: compile_milvus(node).expr
    es = sys.modules.get("mmdm.adapters.vectors.elasticsearch")
    if es is not None and isinstance(store, es.ElasticsearchVectorStore):
        from mmdm.query.compile.es import compile_es

        return lambda node: compile_es(node, store.filter_fields).body
    return None


class StoreVectors:
    """One query vector against one index set, as the planner's ``VectorSource``.

    With ``joined_filter`` (a store in the metadata's database: the query's SQL condition over
    ``file_metas AS f`` and its parameters), it is also a ``JoinedVectorSource``.
    """

    def __init__(self, store: VectorStore, vector: np.ndarray, index_set_id: str,
                 dataset_id: str, version: str,
                 joined_filter: tuple[str, dict[str, Any]] | None = None):
        self.store, self.vector = store, vector
        self.where = {"index_set_id": index_set_id, "dataset_id": dataset_id,
                      "dataset_version": version}
        self.max_top_k = int(store.max_top_k)
        self._compile = native_compiler(store)
        self.joins_filter = joined_filter is not None
        self._joined = joined_filter

    def search_joined(self, *, top_k: int, score_threshold: float | None,
                      exact: bool) -> list[tuple[str, float]]:
        hits = self.store.search(self.vector, top_k=top_k, score_threshold=score_threshold,
                                 where=self._joined, exact=exact, **self.where)
        return [(h.file_meta_id, float(h.score)) for h in hits]

    def search(self, *, top_k: int, score_threshold: float | None,
               file_meta_ids: list[str] | None, pushdown: Node) -> list[tuple[str, float]]:
        native = None
        if pushdown != Const(True) and self._compile is not None:
            native = self._compile(pushdown) or None  # "" is Milvus for "no condition"
        hits = self.store.search(self.vector, top_k=top_k, score_threshold=score_threshold,
                                 file_meta_ids=file_meta_ids, filter=native, **self.where)
        return [(h.file_meta_id, float(h.score)) for h in hits]


def _first(vectors: list[np.ndarray | Exception]) -> np.ndarray:
    if not vectors:
        raise AdapterError("the embedding model returned no vector for the query")
    if isinstance(vectors[0], Exception):
        raise vectors[0]
    return np.asarray(vectors[0], dtype=np.float32)


def embed_text(embedder: Embedder, text: str) -> np.ndarray:
    """The query text's vector; an image-only model is a clear, typed refusal."""
    message = (f"the embedding model {embedder.model!r} embeds images only, so a text query "
               "(Content / QueryText) cannot be searched; search with QueryImage, or index "
               "with a text-capable model (DashScope, GME)")
    if not getattr(embedder, "supports_text", True):
        raise UnsupportedFeatureError("no-text-embedding", message, backend=embedder.model)
    try:
        return _first(list(embedder.embed_texts([text])))
    except NotSupportedError as exc:
        raise UnsupportedFeatureError("no-text-embedding", message,
                                      backend=embedder.model) from exc


MAX_QUERY_IMAGE_BYTES = 32 * 1024 * 1024


def query_image_input(store: MetadataStore, loader: ImageLoader, dataset_id: str, version: str,
                      uri: str) -> ImageInput:
    """The image a ``QueryImage`` URI names: the version's file when it has one (its content
    type travels along), else a file under a registered dataset's root (never anywhere else
    the server can read: a query names images, not paths on the server)."""
    known = store.scan_lookup(dataset_id, version, [uri])
    if uri in known:
        return loader.load(store.get_file_metas_by_pk([known[uri][0]])[0])
    if not within_any(uri, store.dataset_roots()):
        raise AdapterError(f"QueryImage {uri!r} is not a file of a registered dataset; "
                           "name one, or upload the image", is_input_error=True)
    storage, key = loader.reader.storage_for(uri)
    if storage.head(key).size > MAX_QUERY_IMAGE_BYTES:
        raise AdapterError(f"QueryImage {uri!r} is larger than "
                           f"{MAX_QUERY_IMAGE_BYTES // (1024 * 1024)} MiB", is_input_error=True)
    return ImageInput(uri, storage.read(key), "application/octet-stream")


def embed_image(embedder: Embedder, image: ImageInput) -> np.ndarray:
    return _first(list(embedder.embed_images([image])))


def query_vector(embedder: Embedder, semantic: Semantic | None, upload: bytes | None,
                 image_for_uri: Callable[[str], ImageInput],
                 factors: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """The query vector of a text, an image (a URI or uploaded bytes), or both.

    Text and image together are fused, never one dropped, weighted by ``factors`` (text,
    image): a model that fuses its inputs itself (ONE-PEACE) gets both in one request with
    those factors; for the others it is the weighted mean of their unit vectors, normalised
    again (the multimodal models here put both in one space)."""
    text = semantic.text if semantic is not None else None
    image = None
    if upload is not None:
        image = ImageInput("upload", upload, "application/octet-stream")
    elif semantic is not None and semantic.image is not None:
        image = image_for_uri(str(semantic.image))
    assert text is not None or image is not None, \
        "query_mode let a vector query through without input"
    if image is None:
        return embed_text(embedder, str(text))
    if text is None:
        return embed_image(embedder, image)
    if getattr(embedder, "fuses_inputs", False):
        return np.asarray(embedder.embed_fused(text, image, factors),  # type: ignore[attr-defined]
                          dtype=np.float32)
    vectors = [l2_normalise(embed_text(embedder, text)), l2_normalise(embed_image(embedder, image))]
    return l2_normalise(np.average(vectors, axis=0, weights=factors))
