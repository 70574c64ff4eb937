"""Paging a listing to its end with NextToken, as a client of ListDatasetFileMetas does.

Loads the DSL bench's N rows (``bench/dsl_data.py``) into a throw-away PostgreSQL database (on
a server at ``--pg``, or on an embedded server, the default store, in a temporary folder), then
for each listing asks for pages of ``MaxResults=100`` through ``SearchService.search``, each
with the previous page's NextToken, until there is none. Prints the pages, rows/s, per-page
p50/p99 and the process's peak RSS, and checks that the pages hold every match once (keys
strictly increasing, their number equal to a COUNT). A page costs the same at the end as at
the start: the token carries a keyset cursor, not an offset.

    python bench/paging.py                              # 1M rows, embedded PostgreSQL
    python bench/paging.py --rows 10000000
    python bench/paging.py --pg postgresql://postgres@127.0.0.1:5432/postgres
    python bench/paging.py --rows 10000000 --pg URL --keep-pg mmdm_bench_10m  # with dsl.py's
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import dsl  # noqa: E402
from bench.dsl import pct  # noqa: E402
from mmdm.adapters.search import SearchService  # noqa: E402
from mmdm.query import compile_sql, parse  # noqa: E402

LISTINGS = [
    ("everything", ""),
    ("broad-tag", "Tags.all='car'"),
    ("folder-and-type", "FileDir:'blue_car' AND FileType='image'"),
    ("sorted-by-time", "FileType='image' AND SortBy='FileUpdateTime' AND Order='DESC'"),
]
PAGE = 100


def page_through(search: SearchService, dataset_id: str, text: str) -> dict[str, float]:
    base = f"{text} AND MaxResults={PAGE}" if text else f"MaxResults={PAGE}"
    token, times, rows, last = None, [], 0, None
    started = time.perf_counter()
    while True:
        query = parse(base + (f" AND NextToken='{token}'" if token else ""))
        t = time.perf_counter()
        page = search.search(dataset_id, "v1", query)
        times.append(time.perf_counter() - t)
        keys = [_key(meta, text) for meta, _ in page.items]
        assert all(a < b for a, b in zip(keys, keys[1:])), "a page out of order"
        assert last is None or not keys or last < keys[0], "a row twice, or out of order"
        last = keys[-1] if keys else last
        rows += len(keys)
        token = page.next_token
        if token is None:
            break
    return {"pages": len(times), "rows": rows, "seconds": time.perf_counter() - started,
            "p50": statistics.median(times) * 1000, "p99": pct(times, 0.99) * 1000}


def _key(meta, text: str) -> tuple[int, int]:
    """The listing's order: key order, or (newest update time first, then key) when sorted."""
    if "SortBy" in text:
        return (-(meta.file_update_time or 0), -(meta.pk or 0))
    return (meta.pk or 0, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pg", default="embedded",
                    help="a PostgreSQL admin URL, or 'embedded' (the default store)")
    ap.add_argument("--keep-pg", metavar="NAME",
                    help="load into this database on the --pg server and keep it (reused if "
                         "loaded, e.g. by bench/dsl.py --keep-pg with the same --rows)")
    ap.add_argument("--listings", help="comma-separated names of the listings to page "
                    f"(default: all of {', '.join(name for name, _ in LISTINGS)})")
    args = ap.parse_args()
    wanted = args.listings.split(",") if args.listings else [name for name, _ in LISTINGS]
    if unknown := set(wanted) - {name for name, _ in LISTINGS}:
        raise SystemExit(f"no such listing: {', '.join(sorted(unknown))}")
    if not args.keep_pg:
        store, dataset_id, loaded, indexed = dsl.load_pg(dsl.throwaway_pg(args.pg), args.rows)
    elif args.pg == "embedded":
        raise SystemExit("--keep-pg needs the URL of a server that outlives this run")
    else:
        dsn, loaded_before = dsl.create_pg(args.pg, args.keep_pg)
        store, dataset_id, loaded, indexed = (
            dsl.reuse_pg if loaded_before else dsl.load_pg)(dsn, args.rows)
    print(f"{args.rows:,} rows loaded in {loaded:.0f}s, indexes {indexed:.0f}s", flush=True)
    search = SearchService(store)
    print(f"{'listing':16} {'matches':>9} {'pages':>7} {'seconds':>8} {'rows/s':>8} "
          f"{'page p50':>9} {'p99':>7}", flush=True)
    for name, text in (listing for listing in LISTINGS if listing[0] in wanted):
        counted = compile_sql(parse(text), store.dialect, dataset_id, "v1", count=True)
        matches = int(store.fetchall(counted.sql, counted.params)[0][0])
        r = page_through(search, dataset_id, text)
        assert r["rows"] == matches, (name, r["rows"], matches)
        print(f"{name:16} {matches:>9} {r['pages']:>7.0f} {r['seconds']:>8.1f} "
              f"{r['rows'] / r['seconds']:>8.0f} {r['p50']:>8.2f}m {r['p99']:>6.1f}m",
              flush=True)
    store.close()
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
