"""FileMetaBuild throughput and memory: register N local image files and time the scan.

Prints files/s from listing to committed metadata, cold and warm side by side, and the peak
RSS of scans of N/4, N/2 and N files (each in a fresh process; the worker processes that
examine large batches apart) to show that memory does not grow with N. Also times an unchanged
re-scan.

Cold is what users meet: they scan folders they did not just write. Before a cold scan the
page cache is emptied (``sync`` and ``/proc/sys/vm/drop_caches``: the files, their folders and
inodes, and the database files); where that is not allowed (not root) each file is evicted
with ``posix_fadvise(DONTNEED)`` instead, which leaves folders and inodes cached, and the
output says so. A PostgreSQL server's own buffers are not emptied by either. Warm scans run
right after every file was read.

    python bench/scan.py                 # 100k files, SQLite
    python bench/scan.py --files 1000000 --sizes 1000000
    python bench/scan.py --files 20000 --store postgresql://postgres@127.0.0.1:5432/postgres
    python bench/scan.py --store embedded  # the workspace default: embedded PostgreSQL

With PostgreSQL each scan gets a fresh database (on the server of the URL given, or on an
embedded server in a temporary folder), dropped after it, as SQLite gets a fresh file: a
scan's figure does not depend on the rows the scans before it wrote.
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

from bench.page_cache import drop_page_cache  # noqa: E402
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


def evict(root: Path, db: Path | None) -> str:
    """Empty the page cache of ``root``'s files (and ``db``); returns how."""
    if drop_page_cache():
        return "drop_caches"
    paths = [Path(d) / f for d, _, files in os.walk(root) for f in files]
    if db is not None:
        paths += [p for p in db.parent.glob(db.name + "*")]
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "fadvise (folders and inodes stay cached)"


def warm_up(root: Path) -> None:
    for d, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                while fh.read(1 << 20):
                    pass


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
        "worker_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "mmdm-bench-scan"))
    ap.add_argument("--store", help="a PostgreSQL admin URL, or 'embedded' (default: a fresh "
                    "SQLite file per scan)")
    ap.add_argument("--sizes", help="comma-separated file counts (default: N/4, N/2, N)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(scan_once(Path(args.child), args.store)))
        return
    base = Path(args.dir)
    if args.store:
        from bench.dsl import create_pg, drop_pg, pg_server

        admin = pg_server(args.store)
    sizes = [int(n) for n in args.sizes.split(",")] if args.sizes else [
        args.files // 4, args.files // 2, args.files]
    print(f"{'files':>9} {'cold files/s':>13} {'warm files/s':>13} {'peak RSS MB':>12} "
          f"{'worker MB':>10} {'re-scan s':>10}   (load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs)", flush=True)
    how = ""
    for n in sizes:
        root = base / f"n{n}"
        generate(root, n)
        rows = {}
        for mode in ("cold", "warm"):
            db = None if args.store else base / f"meta-{n}-{time.time_ns()}.db"
            store = create_pg(admin)[0] if args.store else f"sqlite:///{db}"
            if mode == "cold":
                how = evict(root, db)
            else:
                warm_up(root)
            try:
                out = subprocess.run([sys.executable, __file__, "--child", str(root), "--store",
                                      store], check=True, capture_output=True, text=True).stdout
            finally:
                if db is None:
                    drop_pg(admin, store)
                else:
                    for f in db.parent.glob(db.name + "*"):
                        f.unlink()
            rows[mode] = json.loads(out.strip().splitlines()[-1])
        cold, warm = rows["cold"], rows["warm"]
        print(f"{n:>9,} {cold['files_per_s']:>13,} {warm['files_per_s']:>13,} "
              f"{max(cold['peak_rss_mb'], warm['peak_rss_mb']):>12.1f} "
              f"{max(cold['worker_rss_mb'], warm['worker_rss_mb']):>10.1f} "
              f"{warm['rescan_s']:>10.2f}", flush=True)
    print(f"store: {'PostgreSQL' if args.store else 'SQLite'}; "
          f"cold = page cache emptied by {how}; target: cold >= 10,000 files/s, flat memory")


if __name__ == "__main__":
    main()
