"""FileMetaExport throughput and memory: export N file metas (1M by default) to JSONL.

Loads N metas once, then exports about N/4, N/2 and all of them (each in a fresh process,
through the same query path an Airflow export task takes) and prints rows/s and peak RSS,
which must not grow with N. Target: >= 50,000 rows/s with flat memory.

On SQLite (the default here) the metas are loaded into a file kept under ``--dir`` for later
runs. With ``--pg`` they are the DSL bench's rows (``bench/dsl_data.py``, 1 % of them
DELETED and so not exported), COPYed into a throw-away PostgreSQL database, on a server at
that admin URL or on an embedded server (the default store) in a temporary folder.

    python bench/export.py                  # 1,000,000 metas, SQLite
    python bench/export.py --rows 200000
    python bench/export.py --rows 10000000 --pg embedded
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdm.adapters.export.job import run_export_job  # noqa: E402
from mmdm.adapters.ids import file_meta_id  # noqa: E402
from mmdm.adapters.metadata import FileMeta, open_store  # noqa: E402

TAGS = ["car", "bus", "lane line", "crosswalk", "tunnel", "night", "rain", "snow"]


def load(db: str, rows: int) -> None:
    store = open_store(db)
    ds = store.create_dataset("bench-export", "file:///bench/")
    store.create_version(ds.dataset_id)
    batch = []
    for i in range(rows):
        uri = f"file:///bench/shard_{i // 1000:04d}/img_{i:07d}.jpg"
        batch.append(FileMeta(
            file_meta_id(ds.dataset_id, "v1", uri), ds.dataset_id, "v1", uri,
            f"img_{i:07d}.jpg", f"shard_{i // 1000:04d}", data_size=20_000 + i % 5000,
            file_fingerprint=f"{i:032x}", file_create_time=1_700_000_000_000 + i,
            file_update_time=1_700_000_000_000 + i, file_type="image", content_type="image/jpeg",
            meta_attributes={"ImageWidth": 640, "ImageHeight": 480, "ImageFormat": "JPEG"},
            tags_ai=[TAGS[i % 8], TAGS[(i // 8) % 8]], tags_user=["checked"] if i % 10 == 0 else []))
        if len(batch) == 10_000:
            store.upsert_file_metas(batch)
            batch.clear()
    store.upsert_file_metas(batch)
    store.close()


def export_once(db: str, dataset: str, query: str, out: str) -> dict:
    store = open_store(db)
    t0 = time.perf_counter()
    result = run_export_job(store, dataset, "v1", export_dir_uri=out, query=query or None)
    seconds = time.perf_counter() - t0
    return {"rows": result.row_count, "seconds": round(seconds, 2),
            "rows_per_s": round(result.row_count / seconds),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _iso(ms: int) -> str:
    from mmdm.adapters.timeutil import to_iso

    return to_iso(ms) or ""


def sqlite_store(base: Path, rows: int) -> tuple[str, str, list[str]]:
    """The kept SQLite store of ``rows`` metas, its dataset, and queries for N/4, N/2, N."""
    db = str(base / f"metas-{rows}.db")
    if not Path(db).exists():
        t = time.perf_counter()
        load(db + ".part", rows)
        os.replace(db + ".part", db)
        print(f"loaded {rows} metas in {time.perf_counter() - t:.0f}s", flush=True)
    # FileCreateTime counts rows here: the first N/4, N/2, and every meta
    queries = [f"FileCreateTime < '{_iso(1_700_000_000_000 + n)}'" for n in (rows // 4, rows // 2)]
    return db, "bench-export", [*queries, ""]


def pg_store(admin: str, rows: int) -> tuple[str, str, list[str]]:
    """A throw-away PostgreSQL database holding the DSL bench's rows, and queries for about
    N/4, N/2 and N of them (their update times are uniform over ``SPAN_MS``)."""
    from bench import dsl, dsl_data

    dsn = dsl.throwaway_pg(admin)
    store, _, loaded, indexed = dsl.load_pg(dsn, rows)
    store.close()
    print(f"loaded {rows} metas in {loaded:.0f}s, indexes {indexed:.0f}s", flush=True)
    cut = [dsl_data.START_MS + dsl_data.SPAN_MS * n // 4 for n in (1, 2)]
    return dsn, "bench", [*(f"FileUpdateTime < '{_iso(ms)}'" for ms in cut), ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pg", help="a PostgreSQL admin URL, or 'embedded' (default: SQLite)")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "mmdm-bench-export"))
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(export_once(*args.child)))
        return
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    db, dataset, queries = (pg_store(args.pg, args.rows) if args.pg
                            else sqlite_store(base, args.rows))
    for query in queries:
        out = tempfile.mkdtemp(dir=base)
        line = subprocess.run([sys.executable, __file__, "--child", db, dataset, query, out],
                              check=True, stdout=subprocess.PIPE, text=True).stdout
        shutil.rmtree(out, ignore_errors=True)
        row = json.loads(line.strip().splitlines()[-1])
        print(f"N={row['rows']:>8}  {row['seconds']:>7.2f}s  {row['rows_per_s']:>7} rows/s  "
              f"peak RSS {row['peak_rss_mb']:>6.1f} MB", flush=True)
    print("target >= 50,000 rows/s with flat memory")


if __name__ == "__main__":
    main()
