"""Elasticsearch as the index table, in PAI's schema: one document per (index set, file),
``_id = record_id``, the vector in a ``dense_vector`` field searched with the ``knn`` option.

Field types. PAI's guide maps ``file_meta_id``, ``dataset_id``, ``dataset_version`` and ``uri``
as ``text``; a ``text`` field is tokenised, so ``term``/``terms`` filters on it do not match whole
values. Indexes created here map them as ``keyword``. A user-created index is accepted when each
filtered field is ``keyword`` or ``text`` with a ``keyword`` sub-field (ES's dynamic-mapping
default, ``field.keyword``), which is then filtered on instead (mind its ``ignore_above``: longer
values are not indexed there). ``uri`` may be plain ``text``: it is returned, never filtered on.

Scores. ES's knn ``_score`` is a transform of the raw similarity ((1 + dot) / 2 for
``dot_product`` and ``cosine``); it is converted back, so hits carry the dot product of the
unit vectors, as on every other store.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from elasticsearch import (
    ApiError,
    AuthorizationException,
    BadRequestError,
    Elasticsearch,
    TransportError,
    helpers,
)

from ..errors import AdapterError, ConfigError
from .base import (
    FILTER_FIELDS,
    NativeFilter,
    VectorHit,
    VectorRecord,
    check_top_k,
    latest_per_id,
    record_id,
    strictly_above,
    unit_vectors,
)

_VECTOR_FIELD = "file_vector"
_HIT_FIELDS = ["file_meta_id", "uri"]
_MAX_CANDIDATES = 10000  # ES refuses num_candidates above this
_MIN_CANDIDATES = 100  # HNSW recall drops fast when num_candidates is close to k
_RETRIABLE_STATUS = {408, 429, 500, 502, 503, 504}
_MIN_VERSION = (8, 8)  # knn search with filter and a similarity bound
_BAD_INDEX_NAME = re.compile(r'[\\/*?"<>| ,#:A-Z]|^[-_+]|^\.\.?$')
_COMPAT_MIMETYPE = re.compile(r"application/(?:vnd\.elasticsearch\+)?(json|x-ndjson)"
                              r"(?:\s*;\s*compatible-with=\d+)?")


@dataclass(frozen=True)
class _Similarity:
    """How one ``dense_vector`` similarity turns a knn ``_score`` back into a dot product, and
    whether the knn ``similarity`` bound is that dot product (None: leave it client-side)."""

    to_dot: Callable[[float], float]
    bound_is_dot: bool


# On unit vectors every one of these orders like the dot product, so any is usable.
_SIMILARITIES = {
    "dot_product": _Similarity(lambda s: 2.0 * s - 1.0, True),
    "cosine": _Similarity(lambda s: 2.0 * s - 1.0, True),
    "max_inner_product": _Similarity(lambda s: s - 1.0 if s >= 1.0 else 1.0 - 1.0 / s, False),
    # score = 1 / (1 + l2²) and l2² = 2 - 2·dot for unit vectors
    "l2_norm": _Similarity(lambda s: 1.0 - (1.0 / s - 1.0) / 2.0, False),
}


def index_mapping(dimension: int, similarity: str = "dot_product",
                  index_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The mapping this adapter creates: PAI's, with keyword fields for exact filters.

    ``index_options`` defaults to float ``hnsw``: since 8.14 ES would otherwise quantise to
    ``int8_hnsw`` (and 9.x to ``bbq_hnsw`` at 384+ dims), making scores approximate.
    """
    vector: dict[str, Any] = {"type": "dense_vector", "dims": dimension,
                              "similarity": similarity, "index": True,
                              "index_options": dict(index_options or {"type": "hnsw"})}
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in FILTER_FIELDS}
    properties[_VECTOR_FIELD] = vector
    return {"properties": properties}


def pin_compatibility(client: Elasticsearch, major: int) -> Elasticsearch:
    """Make ``client`` ask for ``compatible-with=<major>`` on every request.

    elasticsearch-py always negotiates its own major (9), which an 8.x server refuses with
    400 ``media_type_header_exception``; per-call ``accept`` headers override constructor
    headers, so the rewrite sits on the transport, as the Airflow provider's ``es_compat_with``
    does (a transport it already wrapped is left alone). The transport is shared by
    ``client.options()`` copies, so this pins them too.
    """
    transport = client.transport
    if "perform_request" in transport.__dict__:
        return client
    original = transport.perform_request
    replacement = rf"application/vnd.elasticsearch+\g<1>; compatible-with={int(major)}"

    @functools.wraps(original)
    def perform_request(*args: Any, **kwargs: Any) -> Any:
        headers = dict(kwargs.get("headers") or {})
        for key, value in headers.items():
            if key.lower() in ("accept", "content-type") and value:
                headers[key] = _COMPAT_MIMETYPE.sub(replacement, value)
        kwargs["headers"] = headers
        return original(*args, **kwargs)

    transport.perform_request = perform_request  # type: ignore[method-assign]
    return client


class ElasticsearchVectorStore:
    """The index table as an Elasticsearch index.

    Args:
        client: a ready client (e.g. from the Airflow provider's hook); else one is built from
            ``hosts`` and ``basic_auth``.
        hosts: ``http(s)://host:9200`` (PAI's connection ``uri``), or a list of them.
        basic_auth: ``(username, password)``.
        index: the index name (PAI's "table").
        dimension: the embedding model's vector size.
        similarity: ``dense_vector`` similarity for an index created here.
        compat_major: the server's major version to negotiate (8 suits 8.x and 9.x servers);
            None leaves the client's own negotiation alone.
        index_options: ``dense_vector`` ``index_options`` for an index created here.
        settings: index settings for an index created here (PAI's guide: 1 shard, 1 replica).
        batch_size: documents per ``_bulk`` request.
        page_size: hits per page when listing file meta ids (ES caps a page at 10,000).
        refresh: refresh after each upsert/delete so the next search sees it; turn off only
            for bulk loads followed by an explicit ``refresh()``.
    """

    max_top_k: ClassVar[int] = _MAX_CANDIDATES  # k may not exceed num_candidates

    def __init__(self, client: Elasticsearch | None = None, *,
                 hosts: str | list[str] | None = None,
                 basic_auth: tuple[str, str] | None = None, index: str, dimension: int,
                 similarity: str = "dot_product", compat_major: int | None = 8,
                 index_options: Mapping[str, Any] | None = None,
                 settings: Mapping[str, Any] | None = None, batch_size: int = 1000,
                 page_size: int = 5000, refresh: bool = True, request_timeout: float = 30.0):
        if _BAD_INDEX_NAME.search(index) or not index or len(index.encode()) > 255:
            raise ConfigError(f"Elasticsearch index name {index!r} is not valid: lowercase, "
                              "no spaces or any of \\ / * ? \" < > | , # :, not starting "
                              "with - _ +")
        if similarity not in _SIMILARITIES:
            raise ConfigError(f"similarity {similarity!r} is not one of "
                              f"{', '.join(_SIMILARITIES)}")
        if dimension < 1:
            raise ConfigError(f"dimension must be positive, got {dimension}")
        if client is None:
            if not hosts:
                raise ConfigError("Elasticsearch needs a client or hosts (the connection uri)")
            client = Elasticsearch(hosts, basic_auth=basic_auth, request_timeout=request_timeout)
        if compat_major is not None:
            pin_compatibility(client, compat_major)
        self._client = client
        self.table = index
        self.dimension = dimension
        self.similarity = similarity
        self.index_options = index_options
        self.settings = dict(settings or {"number_of_shards": 1, "number_of_replicas": 1})
        self.batch_size = batch_size
        self.page_size = page_size
        self.refresh_after_write = refresh
        # Until ensure_table reads a user's mapping, fields are where we would put them.
        self.filter_fields: Mapping[str, str] = {f: f for f in FILTER_FIELDS}
        self._ready = False

    def __repr__(self) -> str:
        return f"ElasticsearchVectorStore(index={self.table!r})"

    # --- table ------------------------------------------------------------------------------

    def ensure_table(self) -> None:
        """Create the index when absent; otherwise check its mapping.

        Raises:
            ConfigError: an existing index lacks a PAI field, cannot filter one exactly, or
                has a ``file_vector`` of the wrong dimension, element type or similarity.
        """
        with _es_errors(f"open index {self.table!r}"):
            self._check_version()
            created = not self._client.indices.exists(index=self.table) and self._create()
            if not created:
                response = self._client.indices.get_mapping(index=self.table)
                # An alias answers under the concrete index's name.
                mappings = next(iter(response.body.values()))["mappings"]
                self._adopt(mappings.get("properties", {}))
        self._ready = True

    def _create(self) -> bool:
        """False when another worker created the index between our check and our create."""
        try:
            self._client.indices.create(
                index=self.table, settings=self.settings,
                mappings=index_mapping(self.dimension, self.similarity, self.index_options))
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise
            return False
        return True

    def _check_version(self) -> None:
        try:
            number = self._client.info()["version"]["number"]
        except AuthorizationException:
            return  # GET / needs the cluster "monitor" privilege; an index-only user may lack it
        found = tuple(int(part) for part in re.findall(r"\d+", number)[:2])
        if found < _MIN_VERSION:
            raise ConfigError(f"Elasticsearch {number} is too old: knn search with filters "
                              f"needs {'.'.join(map(str, _MIN_VERSION))} or later")

    def _adopt(self, properties: Mapping[str, Any]) -> None:
        problems, paths = [], {}
        for name in FILTER_FIELDS:
            prop = properties.get(name)
            path = _keyword_path(name, prop)
            if prop is None:
                problems.append(f"field {name!r} is missing")
            elif path is not None:
                paths[name] = path
            elif name != "uri":
                problems.append(f"field {name!r} is {prop.get('type', 'an object')} without a "
                                "keyword sub-field, so it cannot be filtered exactly")
        problems += _vector_problems(properties.get(_VECTOR_FIELD), self.dimension)
        if problems:
            raise ConfigError(f"Elasticsearch index {self.table!r} does not have PAI's "
                              f"index-table mapping: {'; '.join(problems)}")
        self.filter_fields = paths
        # The index decides how scores convert, whatever the constructor said.
        self.similarity = properties[_VECTOR_FIELD].get("similarity", "cosine")

    def _ensure(self) -> None:
        if not self._ready:
            self.ensure_table()

    def refresh(self) -> None:
        """Make every write so far visible to search and count."""
        with _es_errors(f"refresh {self.table!r}"):
            self._client.indices.refresh(index=self.table)

    # --- writes -----------------------------------------------------------------------------

    def upsert(self, records: list[VectorRecord]) -> None:
        """Index documents under ``_id = record_id``: re-indexing a file replaces it.

        Raises:
            AdapterError: (input error) a vector of the wrong size, empty or non-finite, or a
                document the index refused.
        """
        self._ensure()
        records = latest_per_id(records)
        if not records:
            return
        vectors = unit_vectors([r.vector for r in records], self.dimension)
        actions = ({"_op_type": "index", "_index": self.table, "_id": r.id,
                    "_source": {**{f: getattr(r, f) for f in FILTER_FIELDS},
                                _VECTOR_FIELD: v.tolist()}}
                   for r, v in zip(records, vectors, strict=True))
        self._bulk(actions, f"index into {self.table!r}")

    def delete(self, index_set_id: str, file_meta_ids: list[str]) -> None:
        """Remove the files' documents from the index set; unknown ids are ignored."""
        self._ensure()
        if not file_meta_ids:
            return
        actions = ({"_op_type": "delete", "_index": self.table,
                    "_id": record_id(index_set_id, f)} for f in dict.fromkeys(file_meta_ids))
        self._bulk(actions, f"delete from {self.table!r}", ignore_status=(404,))

    def _bulk(self, actions: Iterable[dict[str, Any]], what: str,
              ignore_status: tuple[int, ...] = ()) -> None:
        with _es_errors(what):
            helpers.bulk(self._client, actions, chunk_size=self.batch_size,
                         ignore_status=ignore_status)
        if self.refresh_after_write:
            # One refresh per call, not refresh=wait_for per chunk: wait_for blocks each chunk
            # until the next periodic refresh (1 s by default).
            self.refresh()

    # --- reads ------------------------------------------------------------------------------

    def count(self, index_set_id: str) -> int:
        self._ensure()
        with _es_errors(f"count {self.table!r}"):
            response = self._client.count(index=self.table, query=self._bool(
                [self._term("index_set_id", index_set_id)]))
        return int(response["count"])

    def file_meta_ids(self, index_set_id: str) -> list[str]:
        """Every file of the set, paged with ``search_after`` on ``file_meta_id`` (unique within
        a set, so pages never overlap; ``from`` + ``size`` stops at 10,000)."""
        self._ensure()
        sort_field = self.filter_fields["file_meta_id"]
        out: list[str] = []
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": self._bool([self._term("index_set_id", index_set_id)]),
                "sort": [{sort_field: "asc"}], "size": self.page_size,
                "source": ["file_meta_id"], "track_total_hits": False}
            if after is not None:
                body["search_after"] = after
            with _es_errors(f"list file meta ids in {self.table!r}"):
                hits = self._client.search(index=self.table, **body)["hits"]["hits"]
            out.extend(h["_source"]["file_meta_id"] for h in hits)
            if len(hits) < self.page_size:
                return out
            after = hits[-1]["sort"]

    def search(
        self,
        vector: np.ndarray,
        *,
        index_set_id: str,
        top_k: int,
        score_threshold: float | None = None,
        file_meta_ids: list[str] | None = None,
        dataset_id: str | None = None,
        dataset_version: str | None = None,
        filter: NativeFilter | None = None,
    ) -> list[VectorHit]:
        """The ``top_k`` most similar files of the index set, best first.

        Approximate, as ES's HNSW search is, except where Lucene scores every match: when the
        filter matches at most ``num_candidates`` documents. So a search restricted to
        ``file_meta_ids`` asks for at least that many candidates and is exact up to 10,000
        ids (the planner's id batches rely on it).

        Filters go inside ``knn.filter`` (applied during the HNSW walk, so ``k`` hits still
        come back); ``filter`` is an ES query clause over ``filter_fields``. With a threshold,
        ``knn.similarity`` trims server-side where it is the dot product and the strict
        comparison is repeated client-side (``base.strictly_above``): ES keeps equal scores.

        Raises:
            AdapterError: (input error) bad top_k or vector, too many file meta ids for a
                ``terms`` query, or a filter ES refused.
        """
        check_top_k(top_k, self.max_top_k)
        if file_meta_ids is not None and not file_meta_ids:
            return []
        if filter is not None and not isinstance(filter, Mapping):
            raise AdapterError("an Elasticsearch filter must be a query clause (a dict)",
                               is_input_error=True)
        self._ensure()
        body = self.search_body(unit_vectors(vector, self.dimension)[0], index_set_id, top_k,
                                score_threshold, file_meta_ids, dataset_id, dataset_version,
                                filter)
        with _es_errors(f"search {self.table!r}"):
            hits = self._client.search(index=self.table, **body)["hits"]["hits"]
        to_dot = _SIMILARITIES[self.similarity].to_dot
        found = [VectorHit(file_meta_id=h["_source"]["file_meta_id"], uri=h["_source"]["uri"],
                           score=to_dot(float(h["_score"]))) for h in hits]
        return strictly_above(found, score_threshold)

    def search_body(self, vector: np.ndarray, index_set_id: str, top_k: int,
                    score_threshold: float | None = None,
                    file_meta_ids: list[str] | None = None, dataset_id: str | None = None,
                    dataset_version: str | None = None,
                    native: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``_search`` body for a knn query (public so tests can pin it)."""
        clauses = [self._term("index_set_id", index_set_id)]
        for name, value in (("dataset_id", dataset_id), ("dataset_version", dataset_version)):
            if value is not None:
                clauses.append(self._term(name, value))
        candidates = max(_MIN_CANDIDATES, 2 * top_k)
        if file_meta_ids is not None:
            ids = list(dict.fromkeys(file_meta_ids))
            clauses.append({"terms": {self.filter_fields["file_meta_id"]: ids}})
            # No more matches than candidates: Lucene skips the graph and scores them all.
            candidates = max(candidates, len(ids))
        if native is not None:
            clauses.append(dict(native))
        knn: dict[str, Any] = {
            "field": _VECTOR_FIELD, "query_vector": [float(x) for x in vector], "k": top_k,
            "num_candidates": min(_MAX_CANDIDATES, candidates), "filter": self._bool(clauses)}
        if score_threshold is not None and _SIMILARITIES[self.similarity].bound_is_dot:
            knn["similarity"] = float(score_threshold)
        return {"knn": knn, "size": top_k, "source": _HIT_FIELDS}

    def _term(self, name: str, value: str) -> dict[str, Any]:
        return {"term": {self.filter_fields[name]: value}}

    @staticmethod
    def _bool(clauses: list[dict[str, Any]]) -> dict[str, Any]:
        return {"bool": {"filter": clauses}}

    def close(self) -> None:
        """The client is left open: it may be the caller's (e.g. an Airflow hook's)."""


def _keyword_path(name: str, prop: Mapping[str, Any] | None) -> str | None:
    """Where ``name`` can be matched exactly: itself if ``keyword``, else a keyword sub-field."""
    if prop is None:
        return None
    if prop.get("type") in ("keyword", "constant_keyword"):
        return name
    for sub, sub_prop in prop.get("fields", {}).items():
        if sub_prop.get("type") == "keyword":
            return f"{name}.{sub}"
    return None


def _vector_problems(prop: Mapping[str, Any] | None, dimension: int) -> list[str]:
    if prop is None:
        return [f"field {_VECTOR_FIELD!r} is missing"]
    if prop.get("type") != "dense_vector":
        return [f"field {_VECTOR_FIELD!r} is {prop.get('type', 'an object')}, not dense_vector"]
    problems = []
    dims = prop.get("dims")
    if dims is not None and int(dims) != dimension:  # unset dims: ES takes the first vector's
        problems.append(f"field {_VECTOR_FIELD!r} has {dims} dims, the embedding model gives "
                        f"{dimension}")
    if prop.get("element_type", "float") != "float":
        problems.append(f"field {_VECTOR_FIELD!r} stores {prop['element_type']}s, not floats")
    if prop.get("index") is False:
        problems.append(f"field {_VECTOR_FIELD!r} is not indexed (index: false); knn needs it")
    if prop.get("similarity", "cosine") not in _SIMILARITIES:
        problems.append(f"field {_VECTOR_FIELD!r} has unsupported similarity "
                        f"{prop.get('similarity')!r}")
    return problems


@contextmanager
def _es_errors(action: str) -> Iterator[None]:
    """Client failures as AdapterError: retriable for connection errors, timeouts, 429 and
    5xx; bad credentials are a ConfigError; other refusals are the caller's input."""
    try:
        yield
    except AdapterError:
        raise
    except helpers.BulkIndexError as exc:
        statuses = {next(iter(item.values())).get("status") for item in exc.errors}
        first = next(iter(exc.errors[0].values())).get("error") if exc.errors else None
        retriable = bool(statuses) and statuses <= _RETRIABLE_STATUS
        raise AdapterError(f"Elasticsearch: {action}: {len(exc.errors)} documents failed, "
                           f"first: {first}", retriable=retriable,
                           is_input_error=not retriable) from exc
    except ApiError as exc:
        status = exc.meta.status
        if exc.error == "media_type_header_exception":
            raise ConfigError(f"Elasticsearch: {action}: the server refuses the client's "
                              "compatible-with version; set compat_major to the server's major "
                              f"version ({exc.message})") from exc
        if status in (401, 403):
            raise ConfigError(f"Elasticsearch: {action}: {status} {exc.message}") from exc
        retriable = status in _RETRIABLE_STATUS
        raise AdapterError(f"Elasticsearch: {action}: {status} {exc.message}: {exc.info}",
                           retriable=retriable, is_input_error=not retriable) from exc
    except TransportError as exc:  # connection refused, timeout, TLS
        raise AdapterError(f"Elasticsearch: {action}: {exc}", retriable=True) from exc
