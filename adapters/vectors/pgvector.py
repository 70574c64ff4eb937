"""The index table in PostgreSQL with pgvector, beside the metadata it indexes.

Table layout (PAI's "vector index table"): ``id`` text primary key (``record_id``),
``index_set_id``, ``file_meta_id``, ``dataset_id``, ``dataset_version``, ``uri`` and
``file_vector vector(dimension)``; vectors are unit length and compared by inner product, so a
score is the cosine similarity and higher is closer.

Because the table lives in the metadata's own database, the store works through the metadata
store's connection: a vector written inside ``MetadataStore.transaction()`` commits or rolls back
with the file's index state, and a search can join ``file_metas`` and apply a whole DSL filter
in SQL (``search(..., where=compile_where(...))``). The caller decides from the filter's count
whether the search is exact (few matches: distances over exactly those rows, sorted) or goes
through the ANN index (many matches: pgvector's iterative index scan under the filter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import psycopg
from psycopg import sql

from ..errors import ConfigError
from ..metadata import MetadataStore
from .base import (
    FILTER_FIELDS,
    VectorHit,
    VectorRecord,
    check_top_k,
    latest_per_id,
    record_id,
    strictly_above,
    unit_vectors,
)

_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# A row must fit an 8 kB page to stay out of TOAST: 4 bytes a dimension plus the other fields.
_INLINE_MAX_DIMENSION = 1900


@dataclass(frozen=True)
class AnnIndex:
    """The approximate index for broad filters, and how hard a search looks.

    ``kind``: ``ivfflat`` (the default, see bench/vectors.py for why), ``hnsw`` or ``none``.
    IVFFlat clusters the rows it is built over, so it is built once the set is large
    (``build_index``) and rebuilt when the table has grown ``rebuild_growth`` times since.
    """

    kind: str = "ivfflat"
    rows_per_list: int = 1000  # ivfflat: lists = rows / this, as pgvector suggests (<= 1M rows)
    probes: int = 12  # ivfflat: lists searched first; the iterative scan adds more if needed
    max_probes: int = 256
    m: int = 24  # hnsw
    ef_construction: int = 128  # hnsw
    ef_search: int = 200  # hnsw
    min_rows: int = 50_000  # below this a full exact scan is fast enough
    rebuild_growth: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in ("ivfflat", "hnsw", "none"):
            raise ConfigError(f"ANN index {self.kind!r} is not one of ivfflat, hnsw, none")


class PgVectorStore:
    """The index table as a PostgreSQL table with a pgvector column.

    Args:
        store: the PostgreSQL metadata store whose database holds the table (its connection,
            lock and transactions are used).
        table: table name (lower-case letters, digits, ``_``).
        dimension: the embedding model's vector size (at most 16,000, pgvector's limit).
        ann: the approximate index used for broad filters.
        page_size: rows per page when listing an index set's files.
    """

    max_top_k: ClassVar[int] = 16384
    filter_fields: Mapping[str, str] = {f: f for f in FILTER_FIELDS}
    joins_metadata: ClassVar[bool] = True  # a search can take a whole DSL filter in SQL

    def __init__(self, store: MetadataStore, table: str, dimension: int, *,
                 ann: AnnIndex | None = None, page_size: int = 10_000):
        if getattr(store, "dialect", None) != "postgres":
            raise ConfigError("the pgvector store lives in the metadata's PostgreSQL database; "
                              "this metadata store is not PostgreSQL")
        if not _NAME_RE.fullmatch(table):
            raise ConfigError(f"table name {table!r} must be lower-case letters, digits and "
                              "'_', starting with a letter or '_' (at most 63)")
        if not 1 <= dimension <= 16000:
            raise ConfigError(f"dimension must be between 1 and 16000, got {dimension}")
        self.store, self.table, self.dimension = store, table, dimension
        self.ann = ann or AnnIndex()
        self.page_size = page_size
        self._t = sql.Identifier(table)
        self._ready = False

    def __repr__(self) -> str:
        return f"PgVectorStore(table={self.table!r}, dimension={self.dimension})"

    # --- table ------------------------------------------------------------------------------

    def ensure_table(self) -> None:
        """Create the extension and table when absent; check an existing table's vector size.

        Raises:
            ConfigError: pgvector is not installed on the server, or the table exists with
                another dimension or without PAI's fields.
        """
        if self._ready:
            return
        conn = self.store._conn
        with self.store.transaction():
            self.store.lock_schema()
            if self.store.fetchone("SELECT to_regclass(?)", (self.table,))[0] is None:
                self._create_table()
        self._check_columns()
        from pgvector.psycopg import register_vector

        register_vector(conn)
        self._ready = True

    def _create_table(self) -> None:
        # DDL only when the table is new: ALTER TABLE on a table in use would wait for, and
        # then block, every search of the other processes.
        try:
            self.store.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.FeatureNotSupported as exc:  # no pgvector on this server
            raise ConfigError(f"the PostgreSQL server has no pgvector extension: {exc}") from exc
        self._exec(sql.SQL(
            "CREATE TABLE {t} (id text PRIMARY KEY, index_set_id text NOT NULL, "
            "file_meta_id text NOT NULL, dataset_id text NOT NULL, "
            "dataset_version text NOT NULL, uri text NOT NULL, "
            "file_vector vector({d}) NOT NULL)").format(t=self._t, d=sql.Literal(self.dimension)))
        if self.dimension <= _INLINE_MAX_DIMENSION:
            # Kept in the row, not in TOAST: fetching a toasted vector costs ~6 buffer reads,
            # which made an exact search over 20k filtered rows 94 ms (EXPLAIN ANALYZE).
            self._exec(sql.SQL("ALTER TABLE {t} ALTER COLUMN file_vector SET STORAGE PLAIN"
                               ).format(t=self._t))
        # The planner's id batches and the join with file_metas look rows up by file.
        self._exec(sql.SQL("CREATE UNIQUE INDEX {i} ON {t} (index_set_id, file_meta_id)").format(
            i=sql.Identifier(f"{self.table}_set_file"), t=self._t))

    def _check_columns(self) -> None:
        rows = self.store.fetchall(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = ?::regclass AND attnum > 0 AND NOT attisdropped", (self.table,))
        types = dict(rows)
        missing = [c for c in ("id", *FILTER_FIELDS, "file_vector") if c not in types]
        if missing:
            raise ConfigError(f"table {self.table!r} lacks PAI's index fields {missing}")
        if types["file_vector"] != f"vector({self.dimension})":
            raise ConfigError(f"table {self.table!r}: file_vector is {types['file_vector']}, "
                              f"the embedding model gives {self.dimension}-d vectors")

    def _exec(self, statement: sql.Composable, params: Any = ()) -> None:
        with self.store._lock:
            self.store._conn.execute(statement, params)

    def _query(self, statement: sql.Composable, params: Any = ()) -> list[tuple]:
        with self.store._lock:
            return self.store._conn.execute(statement, params).fetchall()

    # --- ANN index --------------------------------------------------------------------------

    def build_index(self, *, force: bool = False) -> str | None:
        """Build (or rebuild) the ANN index when the table is large enough; what was done.

        Called after an index job; a no-op while the table is small or the index is current.
        """
        self.ensure_table()
        if self.ann.kind == "none":
            return None
        name = sql.Identifier(f"{self.table}_ann")
        with self.store.transaction():
            # One builder per table at a time; the others then find the index current.
            self._exec(sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
                sql.Literal(f"mmdm-ann:{self.table}")))
            rows = int(self._query(sql.SQL("SELECT count(*) FROM {t}").format(t=self._t))[0][0])
            built_for = self._index_rows()
            if not force and (rows < self.ann.min_rows or (
                    built_for is not None and rows < built_for * self.ann.rebuild_growth)):
                return None
            if self.ann.kind == "ivfflat":
                lists = max(1, rows // self.ann.rows_per_list)
                method = sql.SQL("ivfflat (file_vector vector_ip_ops) WITH (lists = {})").format(
                    sql.Literal(lists))
            else:
                method = sql.SQL("hnsw (file_vector vector_ip_ops) WITH (m = {}, "
                                 "ef_construction = {})").format(
                    sql.Literal(self.ann.m), sql.Literal(self.ann.ef_construction))
            # IVFFlat keeps its k-means sample in memory (100 MB for 1000 lists at 1M x 512-d,
            # above PostgreSQL's default 64 MB); only for this transaction.
            self.store.execute("SELECT set_config('maintenance_work_mem', '1GB', true)")
            self._exec(sql.SQL("DROP INDEX IF EXISTS {}").format(name))
            self._exec(sql.SQL("CREATE INDEX {} ON {} USING {}").format(name, self._t, method))
            # Remembered for the rebuild rule (IVFFlat's lists are fitted to these rows).
            self._exec(sql.SQL("COMMENT ON INDEX {} IS {}").format(name, sql.Literal(str(rows))))
        return f"{self.ann.kind} index over {rows} rows"

    def _index_rows(self) -> int | None:
        row = self._query(sql.SQL("SELECT obj_description(to_regclass({}), 'pg_class')").format(
            sql.Literal(f"{self.table}_ann")))
        return int(row[0][0]) if row and row[0][0] else None

    # --- writes -----------------------------------------------------------------------------

    def upsert(self, records: list[VectorRecord]) -> None:
        """Insert or replace rows by ``record_id``; inside ``store.transaction()`` they commit
        with whatever else that transaction writes."""
        self.ensure_table()
        records = latest_per_id(records)
        if not records:
            return
        vectors = unit_vectors([r.vector for r in records], self.dimension)
        rows = [(r.id, r.index_set_id, r.file_meta_id, r.dataset_id, r.dataset_version, r.uri,
                 v) for r, v in zip(records, vectors, strict=True)]
        statement = sql.SQL(
            "INSERT INTO {t} (id, index_set_id, file_meta_id, dataset_id, dataset_version, uri, "
            "file_vector) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
            "uri = EXCLUDED.uri, dataset_id = EXCLUDED.dataset_id, "
            "dataset_version = EXCLUDED.dataset_version, file_vector = EXCLUDED.file_vector"
        ).format(t=self._t)
        with self.store.transaction(), self.store._lock, self.store._conn.cursor() as cur:
            cur.executemany(statement, rows)

    def delete(self, index_set_id: str, file_meta_ids: list[str]) -> None:
        self.ensure_table()
        ids = [record_id(index_set_id, f) for f in dict.fromkeys(file_meta_ids)]
        if ids:
            self._exec(sql.SQL("DELETE FROM {t} WHERE id = ANY(%s)").format(t=self._t), (ids,))

    # --- reads ------------------------------------------------------------------------------

    def count(self, index_set_id: str) -> int:
        self.ensure_table()
        return int(self._query(sql.SQL("SELECT count(*) FROM {t} WHERE index_set_id = %s")
                               .format(t=self._t), (index_set_id,))[0][0])

    def file_meta_ids(self, index_set_id: str) -> list[str]:
        """Every file of the set, paged along the (index_set_id, file_meta_id) index."""
        self.ensure_table()
        statement = sql.SQL("SELECT file_meta_id FROM {t} WHERE index_set_id = %s AND "
                            "file_meta_id > %s ORDER BY file_meta_id LIMIT %s").format(t=self._t)
        out: list[str] = []
        while page := [r[0] for r in self._query(statement, (index_set_id, out[-1] if out
                                                            else "", self.page_size))]:
            out.extend(page)
            if len(page) < self.page_size:
                break
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
        filter: sql.Composable | None = None,
        where: tuple[str, dict[str, Any]] | None = None,
        exact: bool = True,
    ) -> list[VectorHit]:
        """The ``top_k`` most similar files of the index set, best first.

        Args:
            filter: a condition over the table's own fields (``psycopg.sql``), alias ``v``.
            where: a condition over ``file_metas AS f`` and its ``%(name)s`` parameters
                (``mmdm.query.compile.sql.compile_where``): the search joins the metadata.
            exact: distances over every row that passes the conditions, sorted (right when
                they are few); False goes through the ANN index with an iterative scan (right
                when they are many).
        """
        check_top_k(top_k, self.max_top_k)
        if file_meta_ids is not None and not file_meta_ids:
            return []
        self.ensure_table()
        params: dict[str, Any] = {"mmdm_q": unit_vectors(vector, self.dimension)[0],
                                  "mmdm_set": index_set_id, "mmdm_k": top_k}
        conds = [sql.SQL("v.index_set_id = %(mmdm_set)s")]
        for name, value in (("dataset_id", dataset_id), ("dataset_version", dataset_version)):
            if value is not None:
                conds.append(sql.SQL("v.{} = {}").format(sql.Identifier(name),
                                                          sql.Placeholder(f"mmdm_{name}")))
                params[f"mmdm_{name}"] = value
        if file_meta_ids is not None:
            conds.append(sql.SQL("v.file_meta_id = ANY(%(mmdm_ids)s)"))
            params["mmdm_ids"] = list(dict.fromkeys(file_meta_ids))
        if filter is not None:
            conds.append(sql.SQL("({})").format(filter))
        source = sql.SQL("{t} AS v").format(t=self._t)
        exact = exact or self.ann.kind == "none"
        if where is not None:
            condition, where_params = where
            params.update(where_params)
            if exact:
                # The matching ids as one sorted array: PostgreSQL looks them all up in one
                # pass over the index, instead of one descent per row of a nested-loop join
                # (10k adjacent files at 200k rows: 17 ms instead of 42, EXPLAIN ANALYZE).
                conds.append(sql.SQL("v.file_meta_id = ANY(ARRAY(SELECT f.file_meta_id FROM "
                                     "file_metas AS f WHERE {}))").format(sql.SQL(condition)))
            else:
                source = sql.SQL("{t} AS v JOIN file_metas AS f ON f.file_meta_id = "
                                 "v.file_meta_id").format(t=self._t)
                conds.append(sql.SQL("({})").format(sql.SQL(condition)))
        statement = self._exact_sql(source, conds) if exact else self._ann_sql(source, conds)
        with self.store.transaction():
            if not exact:
                self._ann_settings(top_k)
            rows = self._query(statement, params)
        hits = [VectorHit(file_meta_id=fid, uri=uri, score=float(score))
                for fid, uri, score in rows]
        return strictly_above(hits, score_threshold)

    @staticmethod
    def _exact_sql(source: sql.Composable, conds: list[sql.Composable]) -> sql.Composed:
        # The distance of exactly the rows that pass the conditions, then sorted: "OFFSET 0"
        # keeps the subquery whole, so no index order is used and the sort carries three
        # small columns, not the vectors.
        return sql.SQL("SELECT file_meta_id, uri, -d FROM (SELECT v.file_meta_id, v.uri, "
                       "v.file_vector <#> %(mmdm_q)s AS d FROM {src} WHERE {c} OFFSET 0) AS s "
                       "ORDER BY d, file_meta_id LIMIT %(mmdm_k)s").format(
            src=source, c=sql.SQL(" AND ").join(conds))

    @staticmethod
    def _ann_sql(source: sql.Composable, conds: list[sql.Composable]) -> sql.Composed:
        # The index's order under the filter (relaxed: an iterative scan may return rows
        # slightly out of order), then sorted by the exact distance.
        return sql.SQL("WITH c AS MATERIALIZED (SELECT v.file_meta_id, v.uri, "
                       "v.file_vector <#> %(mmdm_q)s AS d FROM {src} WHERE {c} "
                       "ORDER BY v.file_vector <#> %(mmdm_q)s LIMIT %(mmdm_k)s) "
                       "SELECT file_meta_id, uri, -d FROM c ORDER BY d + 0, file_meta_id"
                       ).format(src=source, c=sql.SQL(" AND ").join(conds))

    def _ann_settings(self, top_k: int) -> None:
        a = self.ann
        settings = ({"ivfflat.probes": a.probes, "ivfflat.iterative_scan": "relaxed_order",
                     "ivfflat.max_probes": a.max_probes} if a.kind == "ivfflat" else
                    {"hnsw.ef_search": max(a.ef_search, top_k),
                     "hnsw.iterative_scan": "relaxed_order"})
        for name, value in settings.items():
            self.store.execute("SELECT set_config(?, ?, true)", (name, str(value)))

    def close(self) -> None:
        """The connection belongs to the metadata store; nothing to close here."""
