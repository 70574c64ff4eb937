"""Vector-store speed: insert rate and top-10 search latency (nq=1) at N unit vectors.

Backends, each in a fresh process (Milvus Lite allows one process per data directory, and a
fresh process gives a clean peak RSS):
  numpy             exact brute force (the baseline; recall 1 by definition)
  milvus-flat       Milvus Lite through MilvusVectorStore, FLAT index (exact)
  milvus-autoindex  Milvus Lite, AUTOINDEX (faiss HNSW M=16 efConstruction=200, ef=64)
  milvus-hnsw       Milvus Lite, HNSW (same parameters as AUTOINDEX there)

Inserts go through the adapter's ``upsert`` (what indexing jobs call). Then a flush seals the
segments, and Milvus Lite compacts them and builds their indexes in a background thread: the
bench waits until the process goes idle ("flush+index s") so searches use the built indexes
and do not compete with the build. Recall@10 is
measured against exact numpy search over the same vectors. Uniform random 512-d vectors are
the hard case for ANN (neighbours are nearly equidistant); real embeddings cluster, which
``--clusters K`` imitates (K Gaussian clusters, each vector at cosine ~0.8 to its centre).

    python bench/vectors.py                                  # 100k vectors
    python bench/vectors.py --sizes 20000,100000,1000000     # 1M: Milvus Lite needs ~8 min
    python bench/vectors.py --backends numpy,milvus-flat --queries 20
    python bench/vectors.py --sizes 20000 --clusters 1000
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

import numpy as np  # noqa: E402

BACKENDS = ("numpy", "milvus-flat", "milvus-autoindex", "milvus-hnsw")
_CHUNK = 10_000  # vectors are generated per chunk from a fixed seed, identically in every process


def vectors(n: int, dimension: int, clusters: int = 0, seed_base: int = 0) -> np.ndarray:
    centres = None
    if clusters:
        centres = np.random.default_rng(2**31).standard_normal((clusters, dimension))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    chunks = []
    for start in range(0, n, _CHUNK):
        rng = np.random.default_rng(seed_base + start // _CHUNK)
        chunk = rng.standard_normal((min(_CHUNK, n - start), dimension)).astype(np.float32)
        if centres is not None:
            # noise of norm ~0.75 around a unit centre: cosine ~0.8 to it
            picks = rng.integers(0, clusters, size=len(chunk))
            chunk = centres[picks] + chunk * (0.75 / np.sqrt(dimension))
        chunks.append((chunk / np.linalg.norm(chunk, axis=1, keepdims=True)).astype(np.float32))
    return np.concatenate(chunks)


def queries(count: int, dimension: int, clusters: int = 0) -> np.ndarray:
    return vectors(count, dimension, clusters, seed_base=1_000_000)


def exact_top(data: np.ndarray, query: np.ndarray, k: int = 10) -> np.ndarray:
    scores = data @ query
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def run_numpy(n: int, dimension: int, qs: np.ndarray, args: argparse.Namespace) -> dict:
    data = vectors(n, dimension, args.clusters)
    latencies = []
    for q in qs:
        t = time.perf_counter()
        exact_top(data, q)
        latencies.append(time.perf_counter() - t)
    return {"latencies": latencies, "recall": 1.0}


def wait_until_idle(quiet_s: float = 3.0, limit_s: float = 3600.0) -> float:
    """Seconds until this process (all threads) last used CPU, once it has been idle for
    ``quiet_s``: Milvus Lite gives no signal when its background index build is done."""
    start = last_busy = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        cpu = time.process_time()
        time.sleep(0.5)
        now = time.perf_counter()
        if time.process_time() - cpu > 0.05:
            last_busy = now
        elif now - last_busy >= quiet_s:
            break
    return last_busy - start


def run_milvus(n: int, dimension: int, qs: np.ndarray, args: argparse.Namespace) -> dict:
    from pymilvus import MilvusClient

    from mmdm.adapters.vectors.base import VectorRecord
    from mmdm.adapters.vectors.milvus import MilvusVectorStore

    index_type = args.backend.split("-", 1)[1].upper()
    path = str(Path(args.workdir) / "bench.db")
    client = MilvusClient(path)
    store = MilvusVectorStore(path, "bench", dimension, index_type=index_type, client=client,
                              batch_size=args.batch)
    store.ensure_table()
    data = vectors(n, dimension, args.clusters)
    t = time.perf_counter()
    for start in range(0, n, args.batch):
        store.upsert([VectorRecord("bench", f"dfm-{i:08d}", "ds", "v1", f"oss://b/{i:08d}.jpg",
                                   data[i]) for i in range(start, min(n, start + args.batch))])
    insert_s = time.perf_counter() - t
    t = time.perf_counter()
    client.flush("bench")
    flush_s = time.perf_counter() - t + wait_until_idle()
    for q in qs[:3]:  # warm-up: first searches load segments and indexes
        store.search(q, index_set_id="bench", top_k=10)
    latencies, found = [], 0
    for q in qs:
        t = time.perf_counter()
        hits = store.search(q, index_set_id="bench", top_k=10)
        latencies.append(time.perf_counter() - t)
        expected = {f"dfm-{i:08d}" for i in exact_top(data, q)}
        found += len({h.file_meta_id for h in hits} & expected)
    return {"latencies": latencies, "recall": found / (10 * len(qs)), "insert_s": insert_s,
            "flush_s": flush_s}


def child(args: argparse.Namespace) -> None:
    qs = queries(args.queries, args.dim, args.clusters)
    runner = run_numpy if args.backend == "numpy" else run_milvus
    result = runner(args.child_size, args.dim, qs, args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)
    # The data is throwaway: skip Milvus Lite's shutdown, which takes minutes on a big
    # HNSW collection.
    os._exit(0)


def measure(backend: str, n: int, args: argparse.Namespace) -> dict:
    workdir = tempfile.mkdtemp(prefix="mmdm-bench-")
    try:
        cmd = [sys.executable, __file__, "--child-size", str(n), "--backend", backend,
               "--dim", str(args.dim), "--queries", str(args.queries), "--batch",
               str(args.batch), "--clusters", str(args.clusters), "--workdir", workdir]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode != 0 or not lines:
            return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
        return json.loads(lines[-1])
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def row(backend: str, n: int, r: dict) -> str:
    if "error" in r:
        return f"| {backend} | {n:,} | error: {r['error']} ||||||||"
    ms = np.asarray(r["latencies"]) * 1000
    rate = f"{n / r['insert_s']:,.0f}" if "insert_s" in r else "—"
    insert = f"{r['insert_s']:.1f}" if "insert_s" in r else "—"
    flush = f"{r['flush_s']:.1f}" if "flush_s" in r else "—"
    return (f"| {backend} | {n:,} | {rate} | {insert} | {flush} | {np.percentile(ms, 50):.1f} | "
            f"{np.percentile(ms, 95):.1f} | {r['recall']:.3f} | {r['peak_rss_mb']:,.0f} | "
            f"{os.getloadavg()[0]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated vector counts")
    parser.add_argument("--backends", default="numpy,milvus-flat,milvus-autoindex")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=50, help="timed searches per backend")
    parser.add_argument("--batch", type=int, default=2000, help="records per upsert call")
    parser.add_argument("--clusters", type=int, default=0,
                        help="draw vectors around this many centres (0: uniform random)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per backend run")
    parser.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_size:
        return child(args)
    backends = [b for b in args.backends.split(",") if b]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(BACKENDS)}")
    data = f"{args.clusters} clusters" if args.clusters else "uniform random"
    print(f"dim {args.dim}, {data}, top-10, nq=1, {args.queries} timed queries, "
          f"upsert batches of {args.batch}, {os.cpu_count()} CPUs")
    print("| backend | vectors | insert rows/s | insert s | flush+index s | search p50 ms | "
          "p95 ms | recall@10 | peak RSS MB | load avg |")
    # load avg: the machine's 1-minute load after the run; above the CPU count, other work
    # was competing and the timings read high.
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(s) for s in args.sizes.split(",")):
        for backend in backends:
            print(row(backend, n, measure(backend, n, args)), flush=True)


if __name__ == "__main__":
    main()
