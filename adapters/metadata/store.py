"""The metadata store: datasets, versions, file metas, jobs and tag definitions.

One implementation over DB-API connections; the two engines differ only in the small hooks of
``SqliteMetadataStore`` and ``PostgresMetadataStore``. All SQL here is written with ``?``
placeholders and every value is a bound parameter (PostgreSQL's ``%s`` is substituted in one
place, ``_sql``); nothing user-supplied is ever formatted into SQL text.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

import orjson

from ..errors import AdapterError, AlreadyExistsError, NotFoundError
from ..ids import new_dataset_id, new_job_id, new_prompt_id
from ..timeutil import now_ms, to_iso
from .model import FILE_META_COLUMNS, Dataset, DatasetVersion, FileMeta, Job, Prompt
from .schema import migration_statements
from .admin import AdminMixin
from .job_configs import JobConfigMixin
from .work import JobWorkMixin

_TAG_COLUMNS = ("tags_ai", "tags_user", "tags_user_delete_ai", "tags_all")
_STORED_COLUMNS = (*FILE_META_COLUMNS, "tags_all", "file_name_folded", "file_dir_folded",
                   "description_folded")
_TAG_POSITIONS = tuple(FILE_META_COLUMNS.index(c) for c in _TAG_COLUMNS[:3])
_META_ATTRIBUTES_POSITION = FILE_META_COLUMNS.index("meta_attributes")
_META_WIDTH = 1 + len(FILE_META_COLUMNS)  # pk first
# What a FileMetaBuild scan owns: it never touches tags, descriptions or index state.
SCAN_COLUMNS = (
    "file_name", "file_dir", "file_name_folded", "file_dir_folded", "data_size",
    "file_fingerprint", "file_create_time", "file_update_time", "file_type", "content_type",
    "meta_attributes", "sync_time", "status",
)
FINAL_JOB_STATUSES = ("Succeeded", "PartialFailed", "Failed", "ManuallyStop")
# The jobs that beat while they run, so a stopped beat means a lost worker: the runner beats
# every second (with its counters), a scan with its progress. This long without a beat, the
# worker is taken for lost: well above a slow model call or a big batch's commit.
LOST_JOB_ACTIONS = ("FileMetaBuild", "IntelligentTag", "SemanticIndex")
LOST_AFTER_S = 120.0
# A job that wrote this many metas has the store refresh its planner statistics.
ANALYZE_AFTER_WRITES = 10_000


@contextmanager
def database_errors(what: str = "this query") -> Iterator[None]:
    """A driver error (SQLite, PostgreSQL) as an ``AdapterError`` that says what failed: an
    accepted query never surfaces as a raw driver exception. Lost connections and locks are
    retriable; anything else is not."""
    import sqlite3

    import psycopg

    try:
        yield
    except (sqlite3.Error, psycopg.Error) as exc:
        retriable = isinstance(exc, psycopg.OperationalError) or "locked" in str(exc)
        raise AdapterError(f"the metadata database could not run {what}: "
                           f"{type(exc).__name__}: {exc}", retriable=retriable) from exc


def dumps_json(value: Any) -> bytes:
    """A file meta's JSON, keys sorted, by orjson (about 5x json's speed: hot in scans), or by
    json where orjson refuses the value (integers past 64 bits, keys that are not strings)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, sort_keys=True).encode()


class MetadataStore(JobWorkMixin, AdminMixin, JobConfigMixin):
    """Base class; use :func:`mmdm.adapters.metadata.open_store`."""

    dialect: str = ""
    # Whether jobs of one version running at once split its files (claim_pending_files); on
    # SQLite one writer at a time makes a second job wait, so it is refused instead.
    shares_work: bool = False

    def __init__(self, conn: Any):
        self._conn = conn
        self._lock = threading.RLock()
        self._in_tx = False
        self._migrate()

    # -- plumbing -----------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql

    def _encode_tags(self, tags: Sequence[str]) -> Any:
        raise NotImplementedError

    def _decode_tags(self, value: Any) -> list[str]:
        raise NotImplementedError

    def _encode_json(self, value: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _decode_json(self, value: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _in_list(self, column: str) -> str:
        """SQL testing ``column`` against one bound list parameter (see ``_list_param``)."""
        raise NotImplementedError

    def _list_param(self, values: Sequence[Any]) -> Any:
        raise NotImplementedError

    def _modulo(self, column: str) -> str:
        """``column`` modulo one bound parameter."""
        return f"({column} % ?)"

    def _begin(self) -> None:
        self._conn.execute("BEGIN")

    def _commit(self) -> None:
        self._conn.execute("COMMIT")

    def _rollback(self) -> None:
        self._conn.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction; nested calls join the outer one."""
        with self._lock:
            if self._in_tx:
                yield
                return
            self._begin()
            self._in_tx = True
            try:
                yield
            except BaseException:
                self._in_tx = False
                self._rollback()
                raise
            self._in_tx = False
            self._commit()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        with self._lock:
            cur = self._conn.execute(self._sql(sql), params)
            return cur.rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            cur = self._conn.cursor()
            cur.executemany(self._sql(sql), list(rows))

    def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        """Run a query (``?`` placeholders, or the compiled SQL of the query engine)."""
        with self._lock:
            return [tuple(r) for r in self._conn.execute(self._sql(sql), params).fetchall()]

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def writer_connection(self) -> MetadataStore | None:
        """A second connection to the same database for writes that a thread of their own can
        overlap with the caller's work, or None where that does not pay. On PostgreSQL the
        server does the work of a statement while the client waits without the GIL; SQLite
        works inside the client and gives the GIL up and back for each row, so a writing
        thread slows the one it should relieve (measured: FileMetaBuild 9,900 -> 9,250 files/s)."""
        return None

    def _schema_version(self) -> int:
        raise NotImplementedError

    def lock_schema(self) -> None:
        """Inside a transaction: wait until no other connection changes the schema, until
        commit. ``CREATE ... IF NOT EXISTS`` is not safe against a concurrent creator."""

    def _migrate(self) -> None:
        with self.transaction():
            self.lock_schema()
            self.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = self._schema_version()
            for version, statements in migration_statements(self.dialect, current):
                for statement in statements:
                    self.execute(statement)
                self.execute("DELETE FROM schema_version")
                self.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    @property
    def schema_version(self) -> int:
        return self._schema_version()

    def secret(self, name: str) -> bytes:
        """The service's secret ``name`` (e.g. the NextToken key), made on first use and kept
        in the database, so every process and replica of the service shares it. A secret never
        changes once made: each connection reads it once."""
        known = self.__dict__.setdefault("_secrets", {})
        if name not in known:
            known[name] = self._read_secret(name)
        return known[name]

    def _read_secret(self, name: str) -> bytes:
        row = self.fetchone("SELECT secret FROM service_secrets WHERE name = ?", (name,))
        if row is None:
            self.execute("INSERT INTO service_secrets (name, secret) VALUES (?, ?) "
                         "ON CONFLICT (name) DO NOTHING", (name, secrets.token_hex(32)))
            row = self.fetchone("SELECT secret FROM service_secrets WHERE name = ?", (name,))
        return bytes.fromhex(row[0])

    # -- datasets and versions ----------------------------------------------------------------
    _DATASET_COLS = "dataset_id, name, uri, edition, description, create_time, update_time"

    def create_dataset(
        self, name: str, uri: str, *, edition: str = "ADVANCED", description: str | None = None
    ) -> Dataset:
        now = now_ms()
        ds = Dataset(new_dataset_id(), name, uri, edition, description, now, now)
        added = self.execute(
            f"INSERT INTO datasets ({self._DATASET_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (ds.dataset_id, name, uri, edition, description, now, now),
        )
        if not added:
            raise AlreadyExistsError(f"a dataset named {name!r} exists already")
        return ds

    def dataset_roots(self) -> list[str]:
        """Every registered dataset's and STORAGE version's root URI."""
        rows = self.fetchall("SELECT uri FROM datasets UNION SELECT uri FROM dataset_versions "
                             "WHERE source_type = 'STORAGE' AND uri IS NOT NULL")
        return [uri for (uri,) in rows]

    def get_dataset(self, id_or_name: str) -> Dataset:
        row = self.fetchone(
            f"SELECT {self._DATASET_COLS} FROM datasets WHERE dataset_id = ? OR name = ?",
            (id_or_name, id_or_name),
        )
        if row is None:
            raise NotFoundError(f"no dataset with id or name {id_or_name!r}")
        return Dataset(*row)

    # Lists order by creation time, then by id: rows made in one millisecond (a script, a fast
    # machine) keep one order from call to call, so pages of a list neither repeat nor skip.
    def list_datasets(self) -> list[Dataset]:
        rows = self.fetchall(f"SELECT {self._DATASET_COLS} FROM datasets "
                             "ORDER BY create_time, dataset_id")
        return [Dataset(*r) for r in rows]

    _VERSION_COLS = ("dataset_id, version_name, version_number, uri, source_type, description, "
                     "create_time, update_time")

    def create_version(
        self,
        dataset_id: str,
        *,
        uri: str | None = None,
        source_type: str = "STORAGE",
        description: str | None = None,
    ) -> DatasetVersion:
        """Add ``v1``, ``v2``, …; a STORAGE version defaults to the dataset's URI."""
        ds = self.get_dataset(dataset_id)
        if uri is None and source_type == "STORAGE":
            uri = ds.uri
        with self.transaction():
            row = self.fetchone(
                "SELECT COALESCE(MAX(version_number), 0) FROM dataset_versions WHERE dataset_id = ?",
                (ds.dataset_id,),
            )
            number = int(row[0]) + 1
            now = now_ms()
            version = DatasetVersion(ds.dataset_id, f"v{number}", number, uri, source_type,
                                     description, now, now)
            self.execute(
                f"INSERT INTO dataset_versions ({self._VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (ds.dataset_id, version.version_name, number, uri, source_type, description,
                 now, now),
            )
        return version

    def get_version(self, dataset_id: str, version_name: str) -> DatasetVersion:
        row = self.fetchone(
            f"SELECT {self._VERSION_COLS} FROM dataset_versions "
            "WHERE dataset_id = ? AND version_name = ?",
            (dataset_id, version_name),
        )
        if row is None:
            raise NotFoundError(f"dataset {dataset_id!r} has no version {version_name!r}")
        return DatasetVersion(*row)

    def list_versions(self, dataset_id: str) -> list[DatasetVersion]:
        rows = self.fetchall(
            f"SELECT {self._VERSION_COLS} FROM dataset_versions WHERE dataset_id = ? "
            "ORDER BY version_number",
            (dataset_id,),
        )
        return [DatasetVersion(*r) for r in rows]

    def version_stats(self, dataset_id: str, version_name: str) -> dict[str, int]:
        """DataCount and DataSize of the ACTIVE files, as PAI's DatasetVersion reports them."""
        row = self.fetchone(
            "SELECT COUNT(*), COALESCE(SUM(data_size), 0) FROM file_metas "
            "WHERE dataset_id = ? AND dataset_version = ? AND status = 'ACTIVE'",
            (dataset_id, version_name),
        )
        return {"DataCount": int(row[0]), "DataSize": int(row[1])}

    # -- file metas ---------------------------------------------------------------------------
    _get_columns = staticmethod(attrgetter(*FILE_META_COLUMNS))

    def _meta_row(self, meta: FileMeta) -> tuple[Any, ...]:
        """The values of ``_STORED_COLUMNS`` for one meta (hot in scans: kept lean)."""
        values = list(self._get_columns(meta))
        for i in _TAG_POSITIONS:
            values[i] = self._encode_tags(values[i])
        values[_META_ATTRIBUTES_POSITION] = self._encode_json(meta.meta_attributes)
        description = meta.description
        folded = description.casefold() if description is not None else None
        values += (self._encode_tags(meta.tags_all), meta.file_name.casefold(),
                   meta.file_dir.casefold(), folded)
        return tuple(values)

    def upsert_file_metas(
        self, metas: Iterable[FileMeta], *, update_columns: Sequence[str] | None = None,
        likely_new: bool = False,
    ) -> None:
        """Insert metas, or update the existing row of the same (dataset, version, Uri).

        ``update_columns`` limits what an existing row takes over (a scan must not clear tags).
        ``likely_new``: the caller expects no meta of these files to exist (a first build), so
        a store may try a plain insert first; the result is the same either way.
        """
        cols = _STORED_COLUMNS
        update = [c for c in (update_columns or cols) if c not in
                  ("file_meta_id", "dataset_id", "dataset_version", "uri")]
        if any(c in update for c in ("tags_ai", "tags_user", "tags_user_delete_ai")):
            update = list(dict.fromkeys([*update, "tags_all"]))
        conflict = ("ON CONFLICT (dataset_id, dataset_version, uri) DO UPDATE SET "
                    + ", ".join(f"{c} = excluded.{c}" for c in update))
        rows = [self._meta_row(m) for m in metas]
        if rows:
            with self.transaction():
                self._upsert_rows(cols, conflict, rows, likely_new)

    def _upsert_rows(self, cols: Sequence[str], conflict: str, rows: list[tuple],
                     likely_new: bool) -> None:
        """``INSERT INTO file_metas (cols) ... conflict`` for every row, later rows winning.
        (On SQLite an upsert of a new row costs what an insert does: ``likely_new`` is moot.)"""
        self.executemany(f"INSERT INTO file_metas ({', '.join(cols)}) VALUES "
                         f"({', '.join('?' * len(cols))}) {conflict}", rows)

    _META_SELECT = ", ".join(("pk", *FILE_META_COLUMNS))

    def meta_from_row(self, row: Sequence[Any]) -> FileMeta:
        """A meta from SQL selecting ``pk, *FILE_META_COLUMNS`` first (later columns ignored).
        Positional, no dicts: this runs per row of a listing."""
        values = list(row[1:_META_WIDTH])
        for i in _TAG_POSITIONS:
            values[i] = self._decode_tags(values[i])
        values[_META_ATTRIBUTES_POSITION] = self._decode_json(values[_META_ATTRIBUTES_POSITION])
        return FileMeta(*values, pk=row[0])

    def get_file_meta(self, file_meta_id: str) -> FileMeta:
        row = self.fetchone(
            f"SELECT {self._META_SELECT} FROM file_metas WHERE file_meta_id = ?", (file_meta_id,)
        )
        if row is None:
            raise NotFoundError(f"no file meta {file_meta_id!r}")
        return self.meta_from_row(row)

    def select_by_pk(self, pks: Sequence[int], select_list: str) -> list[tuple[Any, ...]]:
        """``(pk, *select_list)`` over ``file_metas AS f`` for the given internal keys, in the
        order given (missing ones left out). ``select_list`` is SQL the caller rendered for
        this engine from names and expressions, never from user input."""
        if not pks:
            return []
        rows = self.fetchall(f"SELECT f.pk, {select_list} FROM file_metas AS f "
                             f"WHERE {self._in_list('f.pk')}", (self._list_param(list(pks)),))
        by_pk = {r[0]: r for r in rows}
        return [by_pk[p] for p in pks if p in by_pk]

    def get_file_metas_by_pk(self, pks: Sequence[int]) -> list[FileMeta]:
        """Metas for the given internal keys, in the order given (missing ones left out)."""
        rows = self.select_by_pk(pks, ", ".join(f"f.{c}" for c in FILE_META_COLUMNS))
        return [self.meta_from_row(r) for r in rows]

    def iter_file_metas(
        self,
        dataset_id: str,
        dataset_version: str,
        *,
        status: str | None = "ACTIVE",
        batch_size: int = 1000,
    ) -> Iterator[FileMeta]:
        """Stream a version's metas in key order, one page in memory at a time."""
        after = 0
        status_sql = "" if status is None else " AND status = ?"
        extra = () if status is None else (status,)
        while True:
            rows = self.fetchall(
                f"SELECT {self._META_SELECT} FROM file_metas WHERE dataset_id = ? "
                f"AND dataset_version = ?{status_sql} AND pk > ? ORDER BY pk LIMIT ?",
                (dataset_id, dataset_version, *extra, after, batch_size),
            )
            for row in rows:
                yield self.meta_from_row(row)
            if len(rows) < batch_size:
                return
            after = rows[-1][0]

    def count_file_metas(
        self, dataset_id: str, dataset_version: str, *, status: str | None = "ACTIVE"
    ) -> int:
        status_sql = "" if status is None else " AND status = ?"
        extra = () if status is None else (status,)
        row = self.fetchone(
            "SELECT COUNT(*) FROM file_metas WHERE dataset_id = ? AND dataset_version = ?"
            + status_sql,
            (dataset_id, dataset_version, *extra),
        )
        return int(row[0])

    def has_file_metas(self, dataset_id: str, dataset_version: str) -> bool:
        """Whether the version has a meta of any status (one index probe)."""
        return self.fetchone("SELECT 1 FROM file_metas WHERE dataset_id = ? "
                             "AND dataset_version = ? LIMIT 1",
                             (dataset_id, dataset_version)) is not None

    def analyze_file_metas(self) -> None:
        """Refresh the planner's statistics of file metas, after a write of many rows. (SQLite
        plans these lookups by its unique index whatever it knows: nothing to do.)"""

    def refresh_statistics_after(self, written: int) -> None:
        """A job (a scan, an import) wrote ``written`` metas: when that is many, refresh the
        statistics, so the next scan's lookups and the first searches plan on the rows that
        are there rather than on a table the planner still takes for empty."""
        if written >= ANALYZE_AFTER_WRITES:
            self.analyze_file_metas()

    def key_span(self, dataset_id: str, dataset_version: str) -> int:
        """How many keys lie between the version's first and last ACTIVE file (inclusive): an
        upper bound on its row count that two descents of ``file_metas_scope`` give, where
        COUNT(*) would read every entry. Query planning uses it; 0 for an empty version."""
        row = self.fetchone(
            "SELECT MIN(pk), MAX(pk) FROM file_metas "
            "WHERE dataset_id = ? AND dataset_version = ? AND status = 'ACTIVE'",
            (dataset_id, dataset_version),
        )
        return 0 if row is None or row[0] is None else int(row[1]) - int(row[0]) + 1

    # -- scan support -------------------------------------------------------------------------
    def scan_lookup(
        self, dataset_id: str, dataset_version: str, uris: Sequence[str]
    ) -> dict[str, tuple[int, str | None, int | None, int | None, str]]:
        """``{uri: (pk, fingerprint, size, update_time, status)}`` for the URIs already known."""
        if not uris:
            return {}
        rows = self.fetchall(
            "SELECT uri, pk, file_fingerprint, data_size, file_update_time, status "
            f"FROM file_metas WHERE dataset_id = ? AND dataset_version = ? AND {self._in_list('uri')}",
            (dataset_id, dataset_version, self._list_param(list(uris))),
        )
        return {r[0]: tuple(r[1:]) for r in rows}  # type: ignore[misc]

    @contextmanager
    def seen_files(self, dataset_id: str, dataset_version: str) -> Iterator[SeenSet]:
        """Track which known metas a scan saw, so the vanished ones can be found in SQL.

        Only the keys of metas that existed before the scan are kept (a temporary table of
        integers): rows the scan writes carry a sync time from after its start instead.
        """
        self.execute("CREATE TEMPORARY TABLE IF NOT EXISTS scan_seen (pk BIGINT PRIMARY KEY)")
        self.execute("DELETE FROM scan_seen")
        try:
            yield SeenSet(self, dataset_id, dataset_version, now_ms())
        finally:
            self.execute("DROP TABLE IF EXISTS scan_seen")

    def _add_seen(self, pks: Sequence[int]) -> None:
        self.executemany(
            "INSERT INTO scan_seen (pk) VALUES (?) ON CONFLICT (pk) DO NOTHING",
            [(p,) for p in pks],
        )

    def _mark_unseen_deleted(self, dataset_id: str, dataset_version: str, started: int,
                             now: int) -> int:
        return self.execute(
            "UPDATE file_metas SET status = 'DELETED', sync_time = ? WHERE dataset_id = ? "
            "AND dataset_version = ? AND status = 'ACTIVE' "
            "AND (sync_time IS NULL OR sync_time < ?) "
            "AND NOT EXISTS (SELECT 1 FROM scan_seen s WHERE s.pk = file_metas.pk)",
            (now, dataset_id, dataset_version, started),
        )

    # -- jobs ---------------------------------------------------------------------------------
    _JOB_COLS = ("job_id, dataset_id, dataset_version, job_action, job_mode, job_spec, "
                 "description, status, total_file_count, completed_file_count, "
                 "failed_file_count, result, create_time, start_time, finish_time")

    def create_job(
        self,
        dataset_id: str,
        dataset_version: str,
        job_action: str,
        *,
        job_mode: str = "Full",
        job_spec: dict[str, Any] | None = None,
        description: str | None = None,
        owner: str | None = None,
    ) -> Job:
        """A new ``Pending`` job; ``owner`` names who runs it (see :meth:`owned_job`).

        Its create time is after that of every earlier job of the version, by a millisecond if
        the clock has not moved on: "the latest job" (of an index set, of a version) is read
        by create time, and two jobs made one after the other in one millisecond must not tie.
        """
        job_id = new_job_id()
        (last,) = self.fetchone("SELECT MAX(create_time) FROM jobs WHERE dataset_id = ? AND "
                                "dataset_version = ?", (dataset_id, dataset_version))
        self.execute(
            "INSERT INTO jobs (job_id, dataset_id, dataset_version, job_action, job_mode, "
            "job_spec, description, status, create_time, owner) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, dataset_id, dataset_version, job_action, job_mode,
             json.dumps(job_spec or {}, ensure_ascii=False), description, "Pending",
             max(now_ms(), (last or 0) + 1), owner),
        )
        return self.get_job(job_id)

    def owned_job(self, owner: str, job_action: str) -> Job | None:
        """The newest job of this action that ``owner`` started, if any."""
        row = self.fetchone(f"SELECT {self._JOB_COLS} FROM jobs WHERE owner = ? AND "
                            "job_action = ? ORDER BY create_time DESC, job_id DESC LIMIT 1",
                            (owner, job_action))
        return None if row is None else self._job_from_row(row)

    def heartbeat(self, job_id: str) -> None:
        """The job's worker is alive (see :meth:`fail_lost_jobs`)."""
        self.execute("UPDATE jobs SET heartbeat_time = ? WHERE job_id = ?", (now_ms(), job_id))

    def fail_lost_jobs(self, dataset_id: str, dataset_version: str, lost_after_s: float,
                       actions: Sequence[str] = LOST_JOB_ACTIONS) -> list[str]:
        """Mark ``Failed`` the running jobs of the version whose worker stopped beating
        (killed, out of memory, a lost machine); they stay resumable by id."""
        cutoff = now_ms() - int(lost_after_s * 1000)
        rows = self.fetchall(
            "SELECT job_id, COALESCE(heartbeat_time, start_time, create_time) FROM jobs WHERE "
            f"dataset_id = ? AND dataset_version = ? AND status = 'Running' AND "
            f"{self._in_list('job_action')} AND "
            "COALESCE(heartbeat_time, start_time, create_time) < ?",
            (dataset_id, dataset_version, self._list_param(list(actions)), cutoff))
        for job_id, beat in rows:
            reason = (f"worker lost: no heartbeat for {lost_after_s:.0f} s (last "
                      f"{to_iso(beat)}); resume it with resume_job_id={job_id}")
            self.append_job_log(job_id, f"Job failed: {reason}", level="ERROR")
            self.finish_job(job_id, "Failed", {"error": reason})
        return [job_id for job_id, _ in rows]

    def get_job(self, job_id: str) -> Job:
        row = self.fetchone(f"SELECT {self._JOB_COLS} FROM jobs WHERE job_id = ?", (job_id,))
        if row is None:
            raise NotFoundError(f"no dataset job {job_id!r}")
        return self._job_from_row(row)

    @staticmethod
    def _job_from_row(row: Sequence[Any]) -> Job:
        values = list(row)
        values[5] = json.loads(values[5])
        values[11] = json.loads(values[11])
        return Job(*values)

    def list_jobs(
        self, dataset_id: str, dataset_version: str | None = None, job_action: str | None = None
    ) -> list[Job]:
        sql = f"SELECT {self._JOB_COLS} FROM jobs WHERE dataset_id = ?"
        params: list[Any] = [dataset_id]
        if dataset_version is not None:
            sql += " AND dataset_version = ?"
            params.append(dataset_version)
        if job_action is not None:
            sql += " AND job_action = ?"
            params.append(job_action)
        rows = self.fetchall(sql + " ORDER BY create_time DESC, job_id DESC", params)
        return [self._job_from_row(r) for r in rows]

    def start_job(self, job_id: str, total_file_count: int = 0) -> None:
        now = now_ms()
        self.execute(
            "UPDATE jobs SET status = 'Running', start_time = ?, heartbeat_time = ?, "
            "total_file_count = ?, finish_time = NULL WHERE job_id = ?",
            (now, now, total_file_count, job_id),
        )

    def update_job_counts(
        self, job_id: str, *, total: int | None = None, completed: int, failed: int
    ) -> None:
        self.execute(
            "UPDATE jobs SET total_file_count = COALESCE(?, total_file_count), "
            "completed_file_count = ?, failed_file_count = ?, heartbeat_time = ? "
            "WHERE job_id = ?",
            (total, completed, failed, now_ms(), job_id),
        )

    def finish_job(self, job_id: str, status: str, result: dict[str, Any] | None = None) -> None:
        """End the job. A job stopped while it ran (StopDatasetJob) stays ``ManuallyStop``
        whatever it reached: jobs that cannot stop midway (build, export, import) finish
        their work, and the record says the user stopped them."""
        if status not in FINAL_JOB_STATUSES:
            raise ValueError(f"{status!r} is not a final job status {FINAL_JOB_STATUSES}")
        with self.transaction():
            self.execute(
                "UPDATE jobs SET status = CASE WHEN status = 'ManuallyStop' THEN status ELSE ? "
                "END, finish_time = ?, result = ? WHERE job_id = ?",
                (status, now_ms(), json.dumps(result or {}, ensure_ascii=False), job_id),
            )
            self.release_claims(job_id)  # lapsed anyway (claim_pending_files): keep it small

    def append_job_log(self, job_id: str, message: str, level: str = "INFO") -> None:
        with self.transaction():
            row = self.fetchone("SELECT COALESCE(MAX(seq), 0) FROM job_logs WHERE job_id = ?",
                                (job_id,))
            self.execute(
                "INSERT INTO job_logs (job_id, seq, log_time, level, message) "
                "VALUES (?, ?, ?, ?, ?)",
                (job_id, int(row[0]) + 1, now_ms(), level, message),
            )

    def job_logs(self, job_id: str) -> list[str]:
        """Log lines as PAI shows them: ``2025-02-17 09:58:10.143 INFO: Job completed …``."""
        from ..timeutil import to_iso

        rows = self.fetchall(
            "SELECT log_time, level, message FROM job_logs WHERE job_id = ? ORDER BY seq",
            (job_id,),
        )
        return [f"{to_iso(t)[:-1].replace('T', ' ')} {lvl}: {msg}" for t, lvl, msg in rows]

    def record_job_files(self, job_id: str, outcomes: Sequence[tuple[str, str, str | None]]) -> None:
        """Commit ``(file_key, state, reason)`` outcomes; a retried file's attempts go up."""
        now = now_ms()
        self.executemany(
            "INSERT INTO job_files (job_id, file_key, state, reason, attempts, update_time) "
            "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (job_id, file_key) DO UPDATE SET "
            "state = excluded.state, reason = excluded.reason, "
            "attempts = job_files.attempts + 1, update_time = excluded.update_time",
            [(job_id, key, state, reason, now) for key, state, reason in outcomes],
        )

    def job_file_failures(self, job_id: str, limit: int = 1000) -> list[tuple[str, str | None]]:
        return [
            (r[0], r[1])
            for r in self.fetchall(
                "SELECT file_key, reason FROM job_files WHERE job_id = ? AND state = 'FAILED' "
                "ORDER BY file_key LIMIT ?",
                (job_id, limit),
            )
        ]

    # -- tag definitions ("prompts") ----------------------------------------------------------
    _PROMPT_COLS = ("prompt_id, name, guide_prompt, tag_definitions, description, revision, "
                    "create_time, modify_time")

    def create_prompt(
        self,
        name: str,
        tag_definitions: dict[str, str],
        *,
        guide_prompt: str = "",
        description: str | None = None,
    ) -> Prompt:
        now = now_ms()
        prompt = Prompt(new_prompt_id(), name, guide_prompt, dict(tag_definitions), description,
                        1, now, now)
        added = self.execute(
            f"INSERT INTO prompts ({self._PROMPT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (prompt.prompt_id, name, guide_prompt,
             json.dumps(prompt.tag_definitions, ensure_ascii=False), description, 1, now, now),
        )
        if not added:
            raise AlreadyExistsError(f"a tag definition named {name!r} exists already")
        return prompt

    def get_prompt(self, id_or_name: str) -> Prompt:
        row = self.fetchone(
            f"SELECT {self._PROMPT_COLS} FROM prompts WHERE prompt_id = ? OR name = ?",
            (id_or_name, id_or_name),
        )
        if row is None:
            raise NotFoundError(f"no tag definition with id or name {id_or_name!r}")
        values = list(row)
        values[3] = json.loads(values[3])
        return Prompt(*values)

    def update_prompt(
        self, prompt_id: str, *, tag_definitions: dict[str, str] | None = None,
        guide_prompt: str | None = None,
    ) -> Prompt:
        """Change a definition; its revision goes up so results can name what they used."""
        old = self.get_prompt(prompt_id)
        self.execute(
            "UPDATE prompts SET tag_definitions = ?, guide_prompt = ?, revision = ?, "
            "modify_time = ? WHERE prompt_id = ?",
            (json.dumps(tag_definitions if tag_definitions is not None else old.tag_definitions,
                        ensure_ascii=False),
             guide_prompt if guide_prompt is not None else old.guide_prompt,
             old.revision + 1, now_ms(), old.prompt_id),
        )
        return self.get_prompt(old.prompt_id)

    def list_prompts(self) -> list[Prompt]:
        rows = self.fetchall("SELECT prompt_id FROM prompts ORDER BY create_time, prompt_id")
        return [self.get_prompt(r[0]) for r in rows]


class SeenSet:
    """Handle on a scan's temporary table of the known metas it saw."""

    def __init__(self, store: MetadataStore, dataset_id: str, dataset_version: str, started: int):
        self._store = store
        self._scope = (dataset_id, dataset_version)
        self.started = started

    def add(self, pks: Sequence[int]) -> None:
        if pks:
            self._store._add_seen(pks)

    def mark_unseen_deleted(self) -> int:
        """Logically delete the ACTIVE metas that were neither seen nor written by the scan."""
        with self._store.transaction():
            return self._store._mark_unseen_deleted(*self._scope, self.started, now_ms())
