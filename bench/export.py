"""FileMetaExport throughput and memory: export N file metas (1M by default) to JSONL.

Loads N metas into a fresh SQLite store once, then exports N/4, N/2 and N of them (each in a
fresh process, through the same query path an Airflow export task takes) and prints rows/s and
peak RSS, which must not grow with N. Target: >= 50,000 rows/s with flat memory.

    python bench/export.py                  # 1,000,000 metas
    python bench/export.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdm.adapters.export.job import run_export_job  # noqa: E402
from mmdm.adapters.ids import file_meta_id  # noqa: E402
from mmdm.adapters.metadata import FileMeta, open_store  # noqa: E402
from mmdm.adapters.search import SearchService  # noqa: E402,F401  (imported before timing starts)
from mmdm.query import parse  # noqa: E402,F401

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


def export_once(db: str, limit: int, out: str) -> dict:
    store = open_store(db)
    # every meta, or the first `limit` of them: FileCreateTime counts rows here
    dataset_id = store.get_dataset("bench-export").dataset_id
    everything = limit >= store.count_file_metas(dataset_id, "v1")
    query = None if everything else f"FileCreateTime < '{_iso(1_700_000_000_000 + limit)}'"
    t0 = time.perf_counter()
    result = run_export_job(store, "bench-export", "v1", export_dir_uri=out, query=query)
    seconds = time.perf_counter() - t0
    return {"rows": result.row_count, "seconds": round(seconds, 2),
            "rows_per_s": round(result.row_count / seconds),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _iso(ms: int) -> str:
    from mmdm.adapters.timeutil import to_iso

    return to_iso(ms) or ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "mmdm-bench-export"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(export_once(args.child[0], int(args.child[1]), args.child[2])))
        return
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    db = str(base / f"metas-{args.rows}.db")
    if not Path(db).exists():
        t = time.perf_counter()
        load(db + ".part", args.rows)
        os.replace(db + ".part", db)
        print(f"loaded {args.rows} metas in {time.perf_counter() - t:.0f}s", flush=True)
    for n in (args.rows // 4, args.rows // 2, args.rows):
        out = tempfile.mkdtemp(dir=base)
        line = subprocess.run([sys.executable, __file__, "--child", db, str(n), out],
                              check=True, capture_output=True, text=True).stdout
        row = json.loads(line.strip().splitlines()[-1])
        print(f"N={row['rows']:>8}  {row['seconds']:>7.2f}s  {row['rows_per_s']:>7} rows/s  "
              f"peak RSS {row['peak_rss_mb']:>6.1f} MB", flush=True)
    print("target >= 50,000 rows/s with flat memory")


if __name__ == "__main__":
    main()
