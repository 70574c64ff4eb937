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


MAX_QUERY_FILE_BYTES = 32 * 1024 * 1024


def query_file_input(store: MetadataStore, loader: ImageLoader, dataset_id: str, version: str,
                     uri: str) -> ImageInput:
    """The file a ``QueryImage`` / ``QueryAudio`` URI names: the version's file when it has
    one (its content type travels along), else a file under a registered dataset's root
    (never anywhere else the server can read: a query names files, not paths on the
    server)."""
    known = store.scan_lookup(dataset_id, version, [uri])
    if uri in known:
        return loader.load(store.get_file_metas_by_pk([known[uri][0]])[0])
    if not within_any(uri, store.dataset_roots()):
        raise AdapterError(f"{uri!r} is not a file of a registered dataset; name one, or "
                           "upload the image", is_input_error=True)
    storage, key = loader.reader.storage_for(uri)
    if storage.head(key).size > MAX_QUERY_FILE_BYTES:
        raise AdapterError(f"{uri!r} is larger than "
                           f"{MAX_QUERY_FILE_BYTES // (1024 * 1024)} MiB", is_input_error=True)
    return ImageInput(uri, storage.read(key), "application/octet-stream")


def embed_image(embedder: Embedder, image: ImageInput) -> np.ndarray:
    return _first(list(embedder.embed_images([image])))


# A fused query's inputs: (kind, input, factor), kind "text" (a str) / "image" / "audio".
QueryPart = tuple[str, Any, float]


def query_vector(embedder: Embedder, semantic: Semantic | None, upload: bytes | None,
                 file_for_uri: Callable[[str], ImageInput],
                 factors: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The query vector of a text, an image (a URI or uploaded bytes), an audio file
    (ONE-PEACE), or several of them.

    Inputs together are fused, never one dropped, weighted by ``factors`` (text, image,
    audio): a model that fuses its inputs itself (ONE-PEACE) gets them in one request with
    those factors; for the others it is the weighted mean of their unit vectors, normalised
    again (the multimodal models here put text and images in one space)."""
    parts: list[QueryPart] = []
    if semantic is not None and semantic.text is not None:
        parts.append(("text", semantic.text, factors[0]))
    if upload is not None:
        parts.append(("image", ImageInput("upload", upload, "application/octet-stream"),
                      factors[1]))
    elif semantic is not None and semantic.image is not None:
        parts.append(("image", file_for_uri(str(semantic.image)), factors[1]))
    if semantic is not None and semantic.audio is not None:
        if not getattr(embedder, "embeds_audio", False):
            raise UnsupportedFeatureError(
                "no-audio-embedding", f"the embedding model {embedder.model!r} cannot embed "
                "audio (QueryAudio): index with multimodal-embedding-one-peace-v1",
                backend=embedder.model)
        parts.append(("audio", file_for_uri(str(semantic.audio)), factors[2]))
    assert parts, "query_mode let a vector query through without input"
    if getattr(embedder, "fuses_inputs", False) and (len(parts) > 1 or parts[0][0] == "audio"):
        return np.asarray(embedder.embed_fused(parts),  # type: ignore[attr-defined]
                          dtype=np.float32)
    single = {"text": embed_text, "image": embed_image}
    vectors = [l2_normalise(single[kind](embedder, value)) for kind, value, _ in parts]
    if len(vectors) == 1:
        return vectors[0]
    return l2_normalise(np.average(vectors, axis=0, weights=[f for _, _, f in parts]))
