"""Milvus as the index table, in PAI's schema: a Milvus server (``http(s)://host:19530``) or
Milvus Lite (a local path ending in ``.db``), both through ``pymilvus.MilvusClient``.

Collection layout (PAI's "vector index table"): ``id`` VARCHAR primary key (``record_id``),
``index_set_id``, ``file_meta_id``, ``dataset_id``, ``dataset_version``, ``uri`` VARCHARs and
``file_vector`` FLOAT_VECTOR(dimension), metric IP: vectors are unit length, so a distance is the
cosine similarity and higher is closer.

Filters are literal expression strings (``quote_literal``): pymilvus' ``filter_params`` fails on
Milvus Lite, so one code path serves both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.exceptions import ConnectionConfigException

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
_HIT_FIELDS = ["file_meta_id", "uri"]  # always named: Milvus Lite returns the vector otherwise
# VARCHAR max_length (bytes) for tables this adapter creates; an existing table's own limits
# are read back and enforced before sending, so an oversize value is an input error, not a
# failed batch.
_CREATE_LENGTHS = {"id": 64, "index_set_id": 256, "file_meta_id": 256, "dataset_id": 256,
                   "dataset_version": 128, "uri": 4096}
_INDEX_BUILD_PARAMS: dict[str, dict[str, Any]] = {
    "FLAT": {},
    "HNSW": {"M": 16, "efConstruction": 200},
    "AUTOINDEX": {},
}
# IP is what we create; COSINE is accepted on a user's table because on unit vectors it gives
# the same numbers. L2 would return distances, not similarities.
_SIMILARITY_METRICS = ("IP", "COSINE")
# Milvus error codes a retry can cure: not ready, unavailable, too many requests, rate limit,
# timeout (pkg/util/merr).
_RETRIABLE_CODES = {1, 2, 4, 8, 10001}
_RETRIABLE_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                   grpc.StatusCode.RESOURCE_EXHAUSTED}
_COLLECTION_NOT_LOADED = 101
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}

T = TypeVar("T")


def quote_literal(value: str) -> str:
    """``value`` as a double-quoted Milvus string literal.

    Backslash and double quote are escaped; so are CR and LF, which both the server's grammar
    and Milvus Lite's tokenizer refuse raw inside a literal. Other characters pass unchanged
    (neither parser knows ``\\u`` escapes).
    """
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def _in_list(field: str, values: list[str]) -> str:
    return f"{field} in [{', '.join(quote_literal(v) for v in values)}]"


class MilvusVectorStore:
    """The index table as a Milvus collection.

    Args:
        uri: ``http(s)://host:port`` for a server, or a local path ending in ``.db`` for Milvus
            Lite (one process per path: a second process fails to open it).
        table: collection name.
        dimension: the embedding model's vector size.
        token: ``user:password`` or an API key (PAI's Milvus connection ``token``).
        db_name: the server database (PAI's ``database``); default database when None.
        index_type: vector index built when this adapter creates the collection:
            ``AUTOINDEX`` (server's choice; HNSW on Milvus Lite), ``HNSW`` or ``FLAT`` (exact).
        batch_size: rows per upsert/delete request (gRPC messages are capped at 64 MB).
        page_size: rows per page when listing file meta ids (a server caps it at 16384).
        search_ef: HNSW ``ef`` at search time (raised to ``top_k`` when smaller).
        timeout: seconds per RPC; None waits as long as pymilvus does.
        client: an existing ``MilvusClient`` to use instead of opening one from ``uri``.
    """

    max_top_k: ClassVar[int] = 16384  # a server caps limit (+ offset) at 16384
    filter_fields: Mapping[str, str] = {f: f for f in FILTER_FIELDS}

    def __init__(self, uri: str, table: str, dimension: int, *, token: str | None = None,
                 db_name: str | None = None, index_type: str = "AUTOINDEX",
                 batch_size: int = 2000, page_size: int = 5000, search_ef: int = 64,
                 timeout: float | None = None, client: MilvusClient | None = None):
        if not _NAME_RE.fullmatch(table):
            raise ConfigError(f"Milvus collection name {table!r} must start with a letter or "
                              "'_' and hold only letters, digits and '_' (at most 255)")
        if index_type.upper() not in _INDEX_BUILD_PARAMS:
            raise ConfigError(f"index_type {index_type!r} is not one of "
                              f"{', '.join(_INDEX_BUILD_PARAMS)}")
        if dimension < 1:
            raise ConfigError(f"dimension must be positive, got {dimension}")
        is_server = uri.startswith(("http://", "https://", "tcp://", "unix:"))
        if client is None and not is_server and not uri.endswith(".db"):
            raise ConfigError(f"Milvus uri {uri!r} is neither http(s)://host:port nor a Milvus "
                              "Lite file path ending in .db")
        self.uri = uri
        self.table = table
        self.dimension = dimension
        self.index_type = index_type.upper()
        self.batch_size = batch_size
        self.page_size = page_size
        self.search_ef = search_ef
        self.timeout = timeout
        self._owns_client = client is None
        if client is None:
            with _milvus_errors(f"connect to Milvus at {uri}"):
                client = MilvusClient(uri=uri, token=token or "", db_name=db_name or "",
                                      timeout=timeout)
        self._client = client
        self._ready = False
        self._metric = "IP"
        self._search_index = self.index_type
        self._max_lengths = dict(_CREATE_LENGTHS)

    def __repr__(self) -> str:  # no credentials in logs, even ones written into the uri
        uri = re.sub(r"//[^/@]*@", "//", self.uri)
        return f"MilvusVectorStore(uri={uri!r}, table={self.table!r})"

    # --- table ------------------------------------------------------------------------------

    def ensure_table(self) -> None:
        """Create the collection when absent; otherwise check it and load it.

        Raises:
            ConfigError: an existing collection lacks a PAI field, has the wrong type or
                dimension, or indexes ``file_vector`` with a metric other than IP/COSINE.
        """
        with _milvus_errors(f"open collection {self.table!r}"):
            exists = self._client.has_collection(self.table, timeout=self.timeout)
            if exists or not self._create():
                self._adopt()
        self._ready = True

    def _create(self) -> bool:
        """False when another worker created the collection between our check and ours."""
        try:
            self._create_collection()
        except MilvusException:
            if not self._client.has_collection(self.table, timeout=self.timeout):
                raise
            return False
        return True

    def _create_collection(self) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True,
                         max_length=_CREATE_LENGTHS["id"])
        for name in FILTER_FIELDS:
            schema.add_field(name, DataType.VARCHAR, max_length=_CREATE_LENGTHS[name])
        schema.add_field(_VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=self.dimension)
        # Strong consistency: a search right after an upsert must see it (a server defaults to
        # Bounded, which may lag by seconds).
        self._client.create_collection(self.table, schema=schema,
                                       index_params=self._index_params(),
                                       consistency_level="Strong", timeout=self.timeout)
        self._client.load_collection(self.table, timeout=self.timeout)

    def _index_params(self) -> Any:
        params = self._client.prepare_index_params()
        params.add_index(_VECTOR_FIELD, index_type=self.index_type, metric_type="IP",
                         params=_INDEX_BUILD_PARAMS[self.index_type])
        return params

    def _adopt(self) -> None:
        description = self._client.describe_collection(self.table, timeout=self.timeout)
        problems, self._max_lengths = _check_fields(description["fields"], self.dimension)
        if problems:
            raise ConfigError(f"Milvus collection {self.table!r} does not have PAI's index-table "
                              f"schema: {'; '.join(problems)}")
        indexes = self._client.list_indexes(self.table, field_name=_VECTOR_FIELD)
        if not indexes:
            # A collection cannot load without a vector index; build ours before loading
            # (create_index on a loaded collection releases it).
            self._client.create_index(self.table, self._index_params(), timeout=self.timeout)
            indexes = self._client.list_indexes(self.table, field_name=_VECTOR_FIELD)
        index = self._client.describe_index(self.table, indexes[0], timeout=self.timeout)
        metric = str(index.get("metric_type", "")).upper()
        if metric not in _SIMILARITY_METRICS:
            raise ConfigError(f"Milvus collection {self.table!r} indexes {_VECTOR_FIELD} with "
                              f"metric {metric or '?'}; IP (or COSINE) is needed for scores to "
                              "be similarities")
        # Searching with a metric other than the index's is silently wrong on Milvus Lite.
        self._metric = metric
        self._search_index = str(index.get("index_type", "")).upper()
        self._client.load_collection(self.table, timeout=self.timeout)

    def _ensure(self) -> None:
        if not self._ready:
            self.ensure_table()

    # --- writes -----------------------------------------------------------------------------

    def upsert(self, records: list[VectorRecord]) -> None:
        """Insert or replace rows by primary key (``record_id``): re-indexing a file never
        duplicates it.

        Raises:
            AdapterError: (input error) a vector of the wrong size, an empty or non-finite
                vector, or a value longer than the table's VARCHAR limit.
        """
        self._ensure()
        records = latest_per_id(records)
        for start in range(0, len(records), self.batch_size):
            rows = self._rows(records[start:start + self.batch_size])
            with _milvus_errors(f"upsert into {self.table!r}"):
                self._client.upsert(self.table, rows, timeout=self.timeout)

    def _rows(self, records: list[VectorRecord]) -> list[dict[str, Any]]:
        vectors = unit_vectors([r.vector for r in records], self.dimension)
        rows = []
        for record, vector in zip(records, vectors, strict=True):
            row: dict[str, Any] = {"id": record.id}
            for name in FILTER_FIELDS:
                row[name] = getattr(record, name)
            for name, value in row.items():
                if len(value.encode()) > self._max_lengths.get(name, 65535):
                    raise AdapterError(f"{name} of file {record.file_meta_id!r} is longer than "
                                       f"the table's {self._max_lengths[name]} bytes",
                                       is_input_error=True)
            row[_VECTOR_FIELD] = vector.tolist()
            rows.append(row)
        return rows

    def delete(self, index_set_id: str, file_meta_ids: list[str]) -> None:
        """Remove the files' rows from the index set; unknown ids are ignored."""
        self._ensure()
        ids = [record_id(index_set_id, f) for f in dict.fromkeys(file_meta_ids)]
        for start in range(0, len(ids), self.batch_size):
            with _milvus_errors(f"delete from {self.table!r}"):
                self._client.delete(self.table, ids=ids[start:start + self.batch_size],
                                    timeout=self.timeout)

    # --- reads ------------------------------------------------------------------------------

    def count(self, index_set_id: str) -> int:
        self._ensure()
        rows = self._read("count rows", self._client.query, self.table,
                          filter=f"index_set_id == {quote_literal(index_set_id)}",
                          output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def file_meta_ids(self, index_set_id: str) -> list[str]:
        """Every file of the set, via ``query_iterator``: a server refuses plain ``query`` pages
        beyond offset + limit = 16384, the iterator pages by primary key instead."""
        self._ensure()
        out: list[str] = []
        with _milvus_errors(f"list file meta ids in {self.table!r}"):
            iterator = self._client.query_iterator(
                self.table, batch_size=self.page_size,
                filter=f"index_set_id == {quote_literal(index_set_id)}",
                output_fields=["file_meta_id"], timeout=self.timeout,
                consistency_level="Strong")
            try:
                while page := iterator.next():
                    out.extend(row["file_meta_id"] for row in page)
            finally:
                iterator.close()
        return out

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

        ``filter`` is a Milvus boolean expression over ``filter_fields``, ANDed with the rest.
        The threshold is applied client-side to the ranked list (exact; see
        ``base.strictly_above``) rather than with range search, whose bound semantics differ
        per metric and whose ANN path differs from a plain search.

        Raises:
            AdapterError: (input error) bad top_k, vector or filter expression.
        """
        check_top_k(top_k, self.max_top_k)
        if file_meta_ids is not None and not file_meta_ids:
            return []
        if filter is not None and not isinstance(filter, str):
            raise AdapterError("a Milvus filter must be an expression string",
                               is_input_error=True)
        self._ensure()
        query = unit_vectors(vector, self.dimension)[0]
        expr = _conjunction(index_set_id, dataset_id, dataset_version, file_meta_ids, filter)
        results = self._read("search", self._client.search, self.table, data=[query.tolist()],
                             filter=expr, limit=top_k, output_fields=_HIT_FIELDS,
                             anns_field=_VECTOR_FIELD,
                             search_params={"metric_type": self._metric,
                                            "params": self._search_params(top_k)})
        hits = [VectorHit(file_meta_id=h["entity"]["file_meta_id"], uri=h["entity"]["uri"],
                          score=float(h["distance"])) for h in results[0]]
        return strictly_above(hits, score_threshold)

    def _search_params(self, top_k: int) -> dict[str, Any]:
        # A server refuses HNSW searches whose ef is below the limit.
        if self._search_index.startswith("HNSW"):
            return {"ef": max(self.search_ef, top_k)}
        return {}

    def _read(self, action: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A read with Strong consistency; reloads once if the collection was released
        (e.g. someone built an index on it meanwhile), which is otherwise error 101."""
        kwargs.update(timeout=self.timeout, consistency_level="Strong")
        try:
            with _milvus_errors(f"{action} in {self.table!r}"):
                return call(*args, **kwargs)
        except AdapterError as exc:
            if getattr(exc.__cause__, "code", None) != _COLLECTION_NOT_LOADED:
                raise
        with _milvus_errors(f"{action} in {self.table!r}"):
            self._client.load_collection(self.table, timeout=self.timeout)
            return call(*args, **kwargs)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


def _conjunction(index_set_id: str, dataset_id: str | None, dataset_version: str | None,
                 file_meta_ids: list[str] | None, native: str | None) -> str:
    clauses = [f"index_set_id == {quote_literal(index_set_id)}"]
    if dataset_id is not None:
        clauses.append(f"dataset_id == {quote_literal(dataset_id)}")
    if dataset_version is not None:
        clauses.append(f"dataset_version == {quote_literal(dataset_version)}")
    if file_meta_ids is not None:
        clauses.append(_in_list("file_meta_id", list(dict.fromkeys(file_meta_ids))))
    if native:
        clauses.append(f"({native})")
    return " and ".join(clauses)


def _check_fields(fields: list[dict[str, Any]],
                  dimension: int) -> tuple[list[str], dict[str, int]]:
    """What is wrong with an existing collection's fields, and its VARCHAR limits."""
    by_name = {f["name"]: f for f in fields}
    problems, lengths = [], {}
    for name in ("id", *FILTER_FIELDS):
        field = by_name.get(name)
        if field is None:
            problems.append(f"field {name!r} is missing")
        elif field["type"] != DataType.VARCHAR:
            problems.append(f"field {name!r} is {_type_name(field['type'])}, not VARCHAR")
        else:
            lengths[name] = int(field.get("params", {}).get("max_length", 65535))
    pk = by_name.get("id", {})
    if pk and not pk.get("is_primary"):
        problems.append("field 'id' is not the primary key")
    if pk.get("auto_id"):
        problems.append("field 'id' has auto_id on; the store sets ids itself")
    vector = by_name.get(_VECTOR_FIELD)
    if vector is None:
        problems.append(f"field {_VECTOR_FIELD!r} is missing")
    elif vector["type"] != DataType.FLOAT_VECTOR:
        problems.append(f"field {_VECTOR_FIELD!r} is {_type_name(vector['type'])}, "
                        "not FLOAT_VECTOR")
    elif int(vector.get("params", {}).get("dim", -1)) != dimension:
        problems.append(f"field {_VECTOR_FIELD!r} has dimension {vector['params'].get('dim')}, "
                        f"the embedding model gives {dimension}")
    return problems, lengths


def _type_name(value: Any) -> str:
    return getattr(value, "name", str(value))


@contextmanager
def _milvus_errors(action: str) -> Iterator[None]:
    """pymilvus and gRPC failures as AdapterError: retriable when the server is unavailable,
    busy or timed out; the caller's fault otherwise (bad expression, wrong schema, ...)."""
    try:
        yield
    except AdapterError:
        raise
    except ConnectionConfigException as exc:
        # A malformed uri, a missing Lite directory, or a Lite path another process holds.
        raise ConfigError(f"Milvus: {action} failed: {exc.message}") from exc
    except MilvusException as exc:
        code = exc.code
        retriable = code in _RETRIABLE_CODES or code in _RETRIABLE_GRPC or (
            "Retry timeout" in str(exc.message) or "Retry run out" in str(exc.message))
        raise AdapterError(f"Milvus: {action} failed: {exc.message} (code {_type_name(code)})",
                           retriable=retriable, is_input_error=not retriable) from exc
    except grpc.RpcError as exc:
        status = exc.code() if callable(getattr(exc, "code", None)) else None
        retriable = status in _RETRIABLE_GRPC
        raise AdapterError(f"Milvus: {action} failed: {exc}", retriable=retriable,
                           is_input_error=not retriable) from exc
