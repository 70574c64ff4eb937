"""DSL query speed on PostgreSQL and SQLite at N file metas, against filtering in Python.

Loads N synthetic file metas (``bench/dsl_data.py``) into a throw-away PostgreSQL database
(created from ``--pg`` and dropped afterwards; COPY with the secondary indexes built after the
load) and into a temporary SQLite file, then times PAI's official example query and eleven
representative ones. Per query: parse and compile time, the first page (``LIMIT 100``, what
ListDatasetFileMetas returns at most) and the ``COUNT(*)`` behind TotalCount, as p50/p95 over
``--repeat`` runs after a warm-up, the page shaped by the count as a search shapes it (few
matches are sorted, many are found by walking the key order); and the baseline: what a user
would write instead, a plain Python filter (one hand-written predicate per query) over the rows
already in memory as dicts, warm, median of three runs (no load time counted), and DuckDB
over the same rows exported as a JSONL file and loaded into a DuckDB table (its load time
printed; the query timed warm, median of three; ``pip install -e '.[bench]'``). Counts are
checked against the plain filter, DuckDB and the reference evaluator. Last, the TotalCount a
search answers (``SearchService._total``: exact, or past ``QUICK_COUNT_UP_TO`` matches the
planner's estimate when it expects ``EXACT_COUNT_UP_TO`` or more, printed), beside the exact
``count`` it saves.

    python bench/dsl.py                      # 1M rows
    python bench/dsl.py --rows 10000000      # 10M; the baseline runs on the first 1M, scaled
    python bench/dsl.py --rows 100000 --explain --engines postgres
    python bench/dsl.py --rows 10000000 --engines postgres --pg embedded   # the default store
    python bench/dsl.py --rows 10000000 --engines postgres --keep-pg mmdm_bench_10m
        # loads once into that database and keeps it; later runs with the flag reuse it
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from urllib.parse import urlsplit
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import psycopg  # noqa: E402

from mmdm.adapters.metadata import MetadataStore, open_store  # noqa: E402
from mmdm.adapters.metadata.embedded import embedded_postgres_url  # noqa: E402
from mmdm.adapters import search as search_module  # noqa: E402
from mmdm.adapters.search import SearchService, sorting_pays  # noqa: E402
from bench import dsl_data  # noqa: E402
from mmdm.query import Query, compile_sql, parse, select_rows  # noqa: E402

OFFICIAL = (
    "(FileUpdateTime > '2025-02-28T00:00:00Z' AND FileUpdateTime < '2025-05-30T09:27:29Z') AND "
    "FileDir:'blue_car' AND NOT FileName=\"toyota.jpg\" AND (( Tags.all='lane line' AND "
    "Tags.all='barrier gate') OR NOT Tags.user='rainy days' ) AND HAS SemanticIndexJobId AND "
    "Content:'a fallen water horse' AND TopK=100 AND SignMode='PUBLIC'")
QUERIES = [
    ("official", OFFICIAL),
    ("tag-selective", "Tags.all='tag-100'"),
    ("name-substring", "FileName:'cat_1234'"),
    ("date-range", "FileUpdateTime >= '2025-03-01T00:00:00Z' AND "
                   "FileUpdateTime < '2025-03-02T00:00:00Z'"),
    ("size-range", "DataSize >= 5000000 AND DataSize < 5010000"),
    ("not-tag", "NOT Tags.all='car'"),
    ("or-tags", "Tags.all='tag-100' OR Tags.all='tag-101' OR Tags.all='tag-102'"),
    ("has", "HAS Description AND FileType='video'"),
    ("meta-range", "MetaAttributes.ImageWidth >= 8000 AND MetaAttributes.ImageHeight < 500"),
    ("dir-substring", "FileDir:'blue_car'"),
    ("tag-sorted", "Tags.all='lane line' AND FileType='image' AND DataSize > 1000000 AND "
                   "SortBy='FileUpdateTime' AND Order='DESC'"),
    ("id-eq", "DatasetFileMetaId='dfm-000004242'"),
]
PAGE = 100


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _width_height(r: dict[str, Any]) -> tuple[Any, Any]:
    meta = r["meta_attributes"] or {}
    return meta.get("ImageWidth"), meta.get("ImageHeight")


_FEB, _MAY = _ms("2025-02-28T00:00:00Z"), _ms("2025-05-30T09:27:29Z")
_MAR1, _MAR2 = _ms("2025-03-01T00:00:00Z"), _ms("2025-03-02T00:00:00Z")
_OR_TAGS = {"tag-100", "tag-101", "tag-102"}
# The baseline: each query as a user would filter rows (dicts of the columns) in plain Python.
PLAIN: dict[str, Callable[[dict[str, Any]], bool]] = {
    "official": lambda r: (
        r["file_update_time"] is not None and _FEB < r["file_update_time"] < _MAY
        and "blue_car" in r["file_dir_folded"] and r["file_name"] != "toyota.jpg"
        and (("lane line" in r["tags_all"] and "barrier gate" in r["tags_all"])
             or "rainy days" not in r["tags_user"])
        and r["semantic_index_job_id"] is not None),
    "tag-selective": lambda r: "tag-100" in r["tags_all"],
    "name-substring": lambda r: "cat_1234" in r["file_name_folded"],
    "date-range": lambda r: (r["file_update_time"] is not None
                             and _MAR1 <= r["file_update_time"] < _MAR2),
    "size-range": lambda r: r["data_size"] is not None and 5000000 <= r["data_size"] < 5010000,
    "not-tag": lambda r: "car" not in r["tags_all"],
    "or-tags": lambda r: not _OR_TAGS.isdisjoint(r["tags_all"]),
    "has": lambda r: r["description"] is not None and r["file_type"] == "video",
    "meta-range": lambda r: (lambda w, h: isinstance(w, (int, float)) and w >= 8000
                             and isinstance(h, (int, float)) and h < 500)(*_width_height(r)),
    "dir-substring": lambda r: "blue_car" in r["file_dir_folded"],
    "tag-sorted": lambda r: ("lane line" in r["tags_all"] and r["file_type"] == "image"
                             and r["data_size"] is not None and r["data_size"] > 1000000),
    "id-eq": lambda r: r["file_meta_id"] == "dfm-000004242",
}

# The same queries as a DuckDB user would write them over the exported rows.
_DUCK_FILTER = {
    "official": (f"file_update_time > {_FEB} AND file_update_time < {_MAY} "
                 "AND contains(file_dir_folded, 'blue_car') AND file_name <> 'toyota.jpg' "
                 "AND ((list_contains(tags_all, 'lane line') "
                 "AND list_contains(tags_all, 'barrier gate')) "
                 "OR NOT list_contains(tags_user, 'rainy days')) "
                 "AND semantic_index_job_id IS NOT NULL"),
    "tag-selective": "list_contains(tags_all, 'tag-100')",
    "name-substring": "contains(file_name_folded, 'cat_1234')",
    "date-range": f"file_update_time >= {_MAR1} AND file_update_time < {_MAR2}",
    "size-range": "data_size >= 5000000 AND data_size < 5010000",
    "not-tag": "NOT list_contains(tags_all, 'car')",
    "or-tags": "list_has_any(tags_all, ['tag-100', 'tag-101', 'tag-102'])",
    "has": "description IS NOT NULL AND file_type = 'video'",
    "meta-range": "image_width >= 8000 AND image_height < 500",
    "dir-substring": "contains(file_dir_folded, 'blue_car')",
    "tag-sorted": ("list_contains(tags_all, 'lane line') AND file_type = 'image' "
                   "AND data_size > 1000000"),
    "id-eq": "file_meta_id = 'dfm-000004242'",
}
_DUCK_COLUMNS = ("file_meta_id", "file_name", "file_name_folded", "file_dir_folded",
                 "data_size", "file_update_time", "file_type", "description", "tags_user",
                 "tags_all", "semantic_index_job_id", "status")


def duckdb_table(rows: list[dict[str, Any]], folder: str) -> tuple[duckdb.DuckDBPyConnection,
                                                                   float]:
    """The rows exported as JSONL and loaded into an in-memory DuckDB table (load seconds)."""
    path = os.path.join(folder, "file_metas.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            out = {c: r[c] for c in _DUCK_COLUMNS}
            out["image_width"], out["image_height"] = _width_height(r)
            fh.write(json.dumps(out) + "\n")
    conn = duckdb.connect()
    t = time.perf_counter()
    conn.execute(f"CREATE TABLE fm AS SELECT * FROM read_json('{path}', format='newline_delimited')")
    loaded = time.perf_counter() - t
    os.unlink(path)
    return conn, loaded


def duckdb_baseline(conn: duckdb.DuckDBPyConnection, name: str, scale: float
                    ) -> tuple[float, int]:
    """DuckDB's count of the query's matches: median ms of three warm runs (scaled), count."""
    sql = f"SELECT count(*) FROM fm WHERE status = 'ACTIVE' AND ({_DUCK_FILTER[name]})"
    conn.execute(sql).fetchone()  # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        matches = conn.execute(sql).fetchone()[0]
        times.append((time.perf_counter() - t) * 1000 * scale)
    return statistics.median(times), matches


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(call: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    call()  # warm-up: plans, caches
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = call()
        times.append((time.perf_counter() - t) * 1000)
    return times, out


# -- loading ------------------------------------------------------------------------------


def create_pg(admin: str, name: str | None = None) -> tuple[str, bool]:
    """A database for the bench: a throw-away one, or ``name`` (kept; True if it exists)."""
    name = name or f"mmdm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (name,)).fetchone() is not None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(admin)._replace(path="/" + name).geturl(), exists


def pg_server(admin: str) -> str:
    """``admin``, or for ``'embedded'`` the admin URL of an embedded server (the default
    store) in a temporary folder, removed at exit."""
    if admin == "embedded":
        folder = tempfile.mkdtemp(prefix="mmdm-bench-pg-")
        atexit.register(shutil.rmtree, folder, True)  # runs after the server's own exit handler
        admin = embedded_postgres_url(folder + "/pg")
    return admin


def throwaway_pg(admin: str) -> str:
    """The URL of a database dropped at exit, on the server at ``admin`` (see ``pg_server``)."""
    admin = pg_server(admin)
    dsn, _ = create_pg(admin)
    atexit.register(drop_pg, admin, dsn)
    return dsn


def reuse_pg(dsn: str, n: int) -> tuple[MetadataStore, str, float, float]:
    """A kept database loaded by an earlier run with the same ``--rows``."""
    store = open_store(dsn)
    dataset_id = store.get_dataset("bench").dataset_id
    have = store.count_file_metas(dataset_id, "v1", status=None)
    if have != n:
        raise SystemExit(f"{dsn} holds {have} rows, not {n}: drop it or name another")
    return store, dataset_id, 0.0, 0.0


def drop_pg(admin: str, dsn: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(dsn).path[1:]}" WITH (FORCE)')


def _secondary_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """file_metas' indexes that back no constraint: dropped for the load, rebuilt after."""
    return conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'file_metas' "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
    ).fetchall()


def load_pg(dsn: str, n: int) -> tuple[MetadataStore, str, float, float]:
    store = open_store(dsn)
    dataset_id = store.create_dataset("bench", "oss://bench/").dataset_id
    store.create_version(dataset_id)
    with psycopg.connect(dsn, autocommit=True) as conn:
        indexes = _secondary_indexes(conn)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                f"COPY file_metas ({', '.join(dsl_data.COLUMNS)}) FROM STDIN") as copy:
            for chunk in dsl_data.records(n, dataset_id):
                for row in chunk:
                    copy.write_row(dsl_data.pg_row(row))
        loaded = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE file_metas")
        indexed = time.perf_counter() - t
    return store, dataset_id, loaded, indexed


def load_sqlite(path: str, n: int) -> tuple[MetadataStore, str, float, float]:
    store = open_store(f"sqlite:///{path}")
    dataset_id = store.create_dataset("bench", "oss://bench/").dataset_id
    store.create_version(dataset_id)
    sql = (f"INSERT INTO file_metas ({', '.join(dsl_data.COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(dsl_data.COLUMNS))})")
    t = time.perf_counter()
    for chunk in dsl_data.records(n, dataset_id):
        with store.transaction():
            store.executemany(sql, [dsl_data.sqlite_row(r) for r in chunk])
    store.execute("ANALYZE")
    return store, dataset_id, time.perf_counter() - t, 0.0


# -- measuring ----------------------------------------------------------------------------


def measure_compile(text: str, repeat: int) -> tuple[float, float]:
    parse_ms, _ = timed(lambda: parse(text), repeat * 5)
    query = parse(text)
    compile_ms, _ = timed(lambda: (compile_sql(query, "postgres", "d", "v1", limit=PAGE),
                                   compile_sql(query, "postgres", "d", "v1", count=True)),
                          repeat * 5)
    return statistics.median(parse_ms) * 1000, statistics.median(compile_ms) * 1000 / 2


def measure_sql(store: MetadataStore, dataset_id: str, query: Query,
                repeat: int) -> dict[str, Any]:
    # As a TAG search's first page runs: TotalCount, then the page shaped by it.
    count = compile_sql(query, store.dialect, dataset_id, "v1", count=True)
    count_ms, rows = timed(lambda: store.fetchall(count.sql, count.params), repeat)
    matches = int(rows[0][0])
    sort = page_shape(store, dataset_id, matches, statistics.median(count_ms))
    page = compile_sql(query, store.dialect, dataset_id, "v1", limit=PAGE, sort_matches=sort)
    page_ms, _ = timed(lambda: store.fetchall(page.sql, page.params), repeat)
    # What a search answers for TotalCount: exact up to the bound, else the planner's estimate.
    search = SearchService(store)
    total_ms, totals = timed(lambda: search._total(dataset_id, "v1", query, exact=False), repeat)
    return {"page": page_ms, "count": count_ms, "matches": matches, "sort": sort,
            "total": total_ms, "estimate": totals[0] if totals[1] else None}


def page_shape(store: MetadataStore, dataset_id: str, matches: int, count_ms: float) -> bool:
    return sorting_pays(store.key_span(dataset_id, "v1"), matches, count_ms, PAGE)


def explain(store: MetadataStore, dataset_id: str, query: Query) -> str:
    out = []
    count = compile_sql(query, "postgres", dataset_id, "v1", count=True)
    t = time.perf_counter()
    matches = int(store.fetchall(count.sql, count.params)[0][0])
    sort = page_shape(store, dataset_id, matches, (time.perf_counter() - t) * 1000)
    for c in (compile_sql(query, "postgres", dataset_id, "v1", limit=PAGE, sort_matches=sort),
              count):
        plan = store.fetchall("EXPLAIN (ANALYZE, BUFFERS) " + c.sql, c.params)
        out.append("\n".join("      " + r[0] for r in plan[:14]))
    return "\n".join(out)


def baseline(rows: list[dict[str, Any]], records: list[dict[str, Any]], name: str,
             query: Query, scale: float) -> tuple[float, int]:
    """The plain filter's time (ms, scaled to --rows) and count; the count must be the
    reference evaluator's (else the predicate is not the query)."""
    keep = PLAIN[name]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        matches = sum(1 for r in rows if r["status"] == "ACTIVE" and keep(r))
        times.append((time.perf_counter() - t) * 1000 * scale)
    assert matches == len(select_rows(query, records)), (name, matches)
    return statistics.median(times), matches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                    help="an admin URL, or 'embedded' for an embedded server (the default "
                         "store) in a temporary folder")
    ap.add_argument("--engines", default="postgres,sqlite")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--baseline-rows", type=int, default=1_000_000,
                    help="rows the Python baseline filters (scaled up to --rows)")
    ap.add_argument("--explain", action="store_true", help="print PostgreSQL plans")
    ap.add_argument("--exact-count-up-to", type=int, default=search_module.EXACT_COUNT_UP_TO,
                    help="where a search's TotalCount turns into the planner's estimate")
    ap.add_argument("--keep-pg", metavar="NAME",
                    help="load into this PostgreSQL database and keep it (reused if loaded)")
    args = ap.parse_args()
    search_module.EXACT_COUNT_UP_TO = args.exact_count_up_to
    args.pg = pg_server(args.pg)
    engines = [e for e in args.engines.split(",") if e]
    base_n = min(args.rows, args.baseline_rows)
    print(f"{args.rows:,} rows; baseline over {base_n:,} rows in memory"
          f"{' (scaled)' if base_n < args.rows else ''}; load average {os.getloadavg()[0]:.1f}"
          f" on {os.cpu_count()} CPUs", flush=True)
    rows = [r for chunk in dsl_data.records(base_n, "bench") for r in chunk]
    records = [dsl_data.as_record(r) for r in rows]
    compiled = {name: measure_compile(text, args.repeat) for name, text in QUERIES}
    base = {name: baseline(rows, records, name, parse(text), args.rows / base_n)
            for name, text in QUERIES}
    del records
    with tempfile.TemporaryDirectory(prefix="mmdm-bench-duckdb-") as folder:
        conn, loaded = duckdb_table(rows, folder)
    del rows
    print(f"DuckDB: JSONL loaded into its table in {loaded:.1f}s", flush=True)
    duck = {name: duckdb_baseline(conn, name, args.rows / base_n) for name, _ in QUERIES}
    conn.close()
    for name, (_, matches) in duck.items():
        assert matches == base[name][1], (name, matches, base[name][1])
    for engine in engines:
        run_engine(engine, args, compiled, base, duck, base_n == args.rows)


def run_engine(engine: str, args: argparse.Namespace, compiled: dict[str, tuple[float, float]],
               base: dict[str, tuple[float, int]], duck: dict[str, tuple[float, int]],
               exact_counts: bool) -> None:
    tmp = tempfile.mkdtemp(prefix="mmdm-bench-dsl-")
    dsn, reuse = create_pg(args.pg, args.keep_pg) if engine == "postgres" else ("", False)
    try:
        if reuse:
            store, dataset_id, loaded, indexed = reuse_pg(dsn, args.rows)
        elif engine == "postgres":
            store, dataset_id, loaded, indexed = load_pg(dsn, args.rows)
        else:
            store, dataset_id, loaded, indexed = load_sqlite(os.path.join(tmp, "b.db"), args.rows)
        print(f"\n{engine}: loaded in {loaded:.1f}s, indexes {indexed:.1f}s", flush=True)
        print(f"{'query':15} {'matches':>8} {'parse':>7} {'compile':>8} {'page':>4} {'p50':>8} "
              f"{'p95':>7} {'count p50':>10} {'p95':>7} {'python':>8} {'x':>6} {'duckdb':>7} "
              f"{'x':>5} "
              f"{'TotalCount p50':>15} {'(estimate)':>11}")
        for name, text in QUERIES:
            query = parse(text)
            m = measure_sql(store, dataset_id, query, args.repeat)
            base_ms, base_matches = base[name]
            assert not exact_counts or m["matches"] == base_matches, (name, m["matches"])
            both = statistics.median(m["page"]) + statistics.median(m["count"])
            print(f"{name:15} {m['matches']:>8} {compiled[name][0]:>6.0f}u "
                  f"{compiled[name][1]:>7.0f}u {'sort' if m['sort'] else 'walk'} "
                  f"{statistics.median(m['page']):>7.2f}m "
                  f"{pct(m['page'], 0.95):>6.1f}m {statistics.median(m['count']):>9.2f}m "
                  f"{pct(m['count'], 0.95):>6.1f}m {base_ms:>7.0f}m {base_ms / both:>5.0f}x "
                  f"{duck[name][0]:>6.0f}m {duck[name][0] / both:>4.1f}x "
                  f"{statistics.median(m['total']):>14.2f}m "
                  f"{m['estimate'] if m['estimate'] is not None else 'exact':>11}", flush=True)
            if args.explain and engine == "postgres":
                print(explain(store, dataset_id, query))
        store.close()
    finally:
        if dsn and not args.keep_pg:
            drop_pg(args.pg, dsn)
        for f in Path(tmp).glob("*"):
            f.unlink()
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
