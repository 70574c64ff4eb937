"""PostgreSQL through psycopg 3: the production metadata store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb, set_json_dumps

from .store import MetadataStore, dumps_json


# Memory for a query's bitmaps and sorts, raised to at least this on the store's connection
# (never lowered). At PostgreSQL's default 4MB, a bitmap of a date range over a 10M-file
# version turns lossy: ANDed with a folder substring it made the engine recheck 1M rows for
# 12k candidates (bench/dsl.py --explain, before file_dirs).
MIN_WORK_MEM = "64MB"
# Upserts of at least this many file metas go through COPY into a staging table and one
# INSERT ... SELECT: one statement per batch instead of one per row, so PostgreSQL's per-statement
# work and the folders trigger (FOR EACH STATEMENT) run once per batch, not once per file.
COPY_FROM_ROWS = 64
_SCOPE = ("dataset_id", "dataset_version", "uri")
SCHEMA_LOCK = 0x6D6D646D  # "mmdm"


class PostgresMetadataStore(MetadataStore):
    dialect = "postgres"
    shares_work = True

    def __init__(self, dsn: str):
        conn = psycopg.connect(dsn, autocommit=True)
        conn.execute("SELECT set_config('work_mem', %s, false) WHERE pg_size_bytes("
                     "current_setting('work_mem')) < pg_size_bytes(%s)",
                     (MIN_WORK_MEM, MIN_WORK_MEM))
        # psycopg prepares a statement after five runs, and PostgreSQL may then settle on a
        # generic plan that ignores how selective this call's filter is (measured: 200 ms and
        # short vector results at 0.01 %, bench/vectors.py). Plan every run for its values.
        conn.execute("SET plan_cache_mode = force_custom_plan")
        set_json_dumps(dumps_json, conn)  # this connection's JSON only, not the process's
        self.dsn = dsn
        self._types: dict[str, str] | None = None  # file_metas' column types, for COPY
        super().__init__(conn)

    def writer_connection(self) -> PostgresMetadataStore:
        return PostgresMetadataStore(self.dsn)

    def _sql(self, sql: str) -> str:
        # Store SQL uses "?" and contains no literal "%" or "?"; compiled queries from the
        # query engine already use "%(name)s" and pass through unchanged.
        return sql.replace("?", "%s")

    def _encode_tags(self, tags: Sequence[str]) -> list[str]:
        return list(tags)

    def _decode_tags(self, value: Any) -> list[str]:
        return list(value or [])

    def _encode_json(self, value: dict[str, Any]) -> Jsonb:
        return Jsonb(value)

    def _decode_json(self, value: Any) -> dict[str, Any]:
        return dict(value or {})

    def _in_list(self, column: str) -> str:
        return f"{column} = ANY(?)"

    def _list_param(self, values: Sequence[Any]) -> list[Any]:
        return list(values)

    def _modulo(self, column: str) -> str:
        return f"MOD({column}, ?)"  # "%" would read as a placeholder

    def lock_schema(self) -> None:
        # One transaction-scoped advisory lock for every schema change mmdm makes: processes
        # opening a new database at once would otherwise race on its catalogs.
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))

    def _schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _upsert_rows(self, cols: Sequence[str], conflict: str, rows: list[tuple],
                     likely_new: bool) -> None:
        if len(rows) < COPY_FROM_ROWS:
            return super()._upsert_rows(cols, conflict, rows, likely_new)
        # One statement may not update a row twice: the last of a file's rows wins, as with
        # a statement per row.
        scope = [cols.index(c) for c in _SCOPE]
        rows = list({tuple(r[i] for i in scope): r for r in rows}.values())
        names = ", ".join(cols)
        with self._lock, self._conn.cursor() as cur:  # inside the caller's transaction
            if likely_new:
                # Straight into the table: no staging copy and no conflict checks (a first
                # build of 1M files: about 10 % less server time a file). If another scan
                # wrote one of these files meanwhile, the savepoint undoes the batch and it
                # is upserted.
                try:
                    with self._conn.transaction():
                        self._copy(cur, "file_metas", cols, rows)
                    return
                except psycopg.errors.UniqueViolation:
                    pass
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS file_metas_incoming ON COMMIT DELETE "
                        f"ROWS AS SELECT {names} FROM file_metas WITH NO DATA")
            cur.execute("TRUNCATE file_metas_incoming")  # an earlier batch of this transaction
            self._copy(cur, "file_metas_incoming", cols, rows)
            cur.execute(f"INSERT INTO file_metas ({names}) SELECT {names} FROM "
                        f"file_metas_incoming {conflict}")

    def _copy(self, cur: psycopg.Cursor, table: str, cols: Sequence[str],
              rows: list[tuple]) -> None:
        # Declared types: psycopg then picks each column's dumper once, not once a value
        # (measured: 8.4 -> 5.0 us a file meta, on the thread that also builds them).
        types = [self._column_types()[c] for c in cols]  # before the COPY holds the connection
        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def _column_types(self) -> dict[str, str]:
        if self._types is None:
            self._types = dict(self._conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'file_metas'::regclass AND attnum > 0 AND NOT attisdropped"
            ).fetchall())
        return self._types

    def analyze_file_metas(self) -> None:
        # A table never analyzed yet reads as nearly empty to the planner: a re-scan right
        # after the first build of 1M files looked each batch up by walking the whole version
        # (PostgreSQL 15: 523 ms a batch, 234 s in all, against 16 s once analyzed). ANALYZE
        # reads a fixed sample (30,000 rows), so it costs the same at any size.
        self.execute("ANALYZE file_metas")

    def _add_seen(self, pks: Sequence[int]) -> None:
        # One statement per batch: a statement per key made an unchanged re-scan of 100k
        # files cost 7 s here against 2 s on SQLite.
        self.execute("INSERT INTO scan_seen (pk) SELECT unnest(?::bigint[]) "
                     "ON CONFLICT (pk) DO NOTHING", (list(pks),))

    def executemany(self, sql, rows) -> None:  # type: ignore[override]
        with self._lock, self._conn.cursor() as cur:
            cur.executemany(self._sql(sql), list(rows))
