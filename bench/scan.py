"""FileMetaBuild throughput and memory: register N local image files and time the scan.

Prints files/s from listing to committed metadata, and the peak RSS of scans of N/4, N/2 and N
files (each in a fresh process) to show that memory does not grow with N. Also times an
unchanged re-scan.

    python bench/scan.py                 # 100k files, SQLite
    python bench/scan.py --files 20000 --store postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from mmdm.adapters.metadata import open_store  # noqa: E402
from mmdm.adapters.scan import build_file_metas  # noqa: E402


def _payloads() -> list[tuple[str, bytes]]:
    out = []
    for i in range(16):
        im = Image.new("RGB", (64 + i, 48), (i * 15, 100, 200 - i * 10))
        for ext, fmt in (("png", "PNG"), ("jpg", "JPEG")):
            buf = io.BytesIO()
            im.save(buf, fmt)
            out.append((ext, buf.getvalue()))
    return out


def generate(root: Path, n: int) -> None:
    """``n`` small images in folders of 1,000; each file's bytes are unique (a suffix)."""
    marker = root / ".complete"
    if marker.exists():
        return
    payloads = _payloads()
    for i in range(n):
        ext, data = payloads[i % len(payloads)]
        d = root / f"shard_{i // 1000:04d}"
        if i % 1000 == 0:
            d.mkdir(parents=True, exist_ok=True)
        suffix = i.to_bytes(8, "little")  # after the end marker: still a valid image
        (d / f"img_{i:07d}.{ext}").write_bytes(data + suffix)
    marker.write_text(str(n))


def scan_once(root: Path, store_url: str) -> dict:
    """Run in a child process: register ``root`` and scan it twice."""
    store = open_store(store_url)
    ds = store.create_dataset(f"bench-{root.name}-{time.time_ns()}", root.as_uri())
    store.create_version(ds.dataset_id)
    t0 = time.perf_counter()
    first = build_file_metas(store, ds.dataset_id, "v1")
    t1 = time.perf_counter()
    again = build_file_metas(store, ds.dataset_id, "v1")
    t2 = time.perf_counter()
    return {
        "files": first.new, "failed": first.failed, "seconds": round(t1 - t0, 2),
        "files_per_s": round(first.new / (t1 - t0)), "rescan_s": round(t2 - t1, 2),
        "rescan_unchanged": again.unchanged,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "mmdm-bench-scan"))
    ap.add_argument("--store", help="metadata store URL (default: a fresh SQLite file)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(scan_once(Path(args.child), args.store)))
        return
    base = Path(args.dir)
    rows = []
    for n in (args.files // 4, args.files // 2, args.files):
        root = base / f"n{n}"
        t = time.perf_counter()
        generate(root, n)
        gen = time.perf_counter() - t
        store = args.store or f"sqlite:///{base / f'meta-{n}-{time.time_ns()}.db'}"
        out = subprocess.run([sys.executable, __file__, "--child", str(root), "--store", store],
                             check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        print(f"N={n:>8}  scan {row['seconds']:>7.2f}s  {row['files_per_s']:>7} files/s  "
              f"peak RSS {row['peak_rss_mb']:>6.1f} MB  unchanged re-scan {row['rescan_s']:.2f}s "
              f"(generated in {gen:.1f}s)", flush=True)
    print(f"store: {'PostgreSQL' if args.store and 'postgres' in args.store else 'SQLite'}; "
          f"target >= 10,000 files/s with flat memory")


if __name__ == "__main__":
    main()
