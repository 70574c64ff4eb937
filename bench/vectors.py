"""Vector-store speed: insert rate and top-10 search latency (nq=1) at N unit vectors.

Backends, each in a fresh process (Milvus Lite allows one process per data directory, and a
fresh process gives a clean peak RSS):
  numpy             exact brute force (the baseline; recall 1 by definition)
  milvus-flat       Milvus Lite through MilvusVectorStore, FLAT index (exact)
  milvus-autoindex  Milvus Lite, AUTOINDEX (faiss HNSW M=16 efConstruction=200, ef=64)
  milvus-hnsw       Milvus Lite, HNSW (same parameters as AUTOINDEX there)
  pgvector          the embedded PostgreSQL with pgvector, searched the way users search:
                    SearchService with the DSL filter ``DataSize < m`` joined in SQL (file i has
                    DataSize i), at every selectivity of ``--selectivities``; the planner goes
                    exact under its count threshold and through the ANN index (``--ann``) above
                    it. Printed beside numpy exact search under the same filter.

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
    python bench/vectors.py --sizes 100000,1000000 --clusters 1000 --timeout 1200   # the README's
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

BACKENDS = ("numpy", "milvus-flat", "milvus-autoindex", "milvus-hnsw", "pgvector")
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


def run_pgvector(n: int, dimension: int, qs: np.ndarray, args: argparse.Namespace) -> dict:
    import psycopg

    from mmdm.adapters.metadata import open_store
    from mmdm.adapters.metadata.embedded import embedded_postgres_url, release_embedded_postgres
    from mmdm.adapters.search import SearchService
    from mmdm.adapters.vectors.base import VectorRecord
    from mmdm.adapters.vectors.pgvector import AnnIndex, PgVectorStore
    from mmdm.query import parse

    url = embedded_postgres_url(Path(args.workdir) / "pg")
    store = open_store(url)
    ds = store.create_dataset("bench", "oss://bench/").dataset_id
    store.create_version(ds)
    t = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy("COPY file_metas (file_meta_id, dataset_id, dataset_version, uri, "
                      "file_name, file_dir, file_name_folded, file_dir_folded, data_size) "
                      "FROM STDIN") as copy:
            for i in range(n):
                name = f"{i:08d}.jpg"
                copy.write_row((f"dfm-{i:08d}", ds, "v1", f"oss://b/{name}", name, "", name,
                                "", i))
        conn.execute("VACUUM ANALYZE file_metas")
    metas_s = time.perf_counter() - t

    kind, *params = args.ann.split(":")
    ann = AnnIndex(kind=kind, **{k: int(v) for k, v in (x.split("=") for x in params)})
    vecs = PgVectorStore(store, "bench", dimension, ann=ann)
    data = vectors(n, dimension, args.clusters)
    t = time.perf_counter()
    for start in range(0, n, args.batch):
        vecs.upsert([VectorRecord("bench", f"dfm-{i:08d}", ds, "v1", f"oss://b/{i:08d}.jpg",
                                  data[i]) for i in range(start, min(n, start + args.batch))])
    insert_s = time.perf_counter() - t
    t = time.perf_counter()
    built = vecs.build_index(force=True)
    store.execute("VACUUM ANALYZE bench")
    flush_s = time.perf_counter() - t
    disk = store.fetchone("SELECT pg_total_relation_size('bench'), "
                          "COALESCE(pg_relation_size(to_regclass('bench_ann')), 0)")

    dim = dimension

    class QueryEmbedder:  # "q<j>" is query vector j
        model, dimension, max_batch, supports_text = "bench", dim, 1, True

        def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
            return [qs[int(text[1:])] for text in texts]

    search = SearchService(store, vector_store=vecs, embedder=QueryEmbedder(),
                           index_set_id="bench")
    filtered = {}
    for s in args.selectivities:
        m = max(1, int(round(n * s)))
        latencies, numpy_ms, found, short, plans = [], [], 0, 0, set()
        for j, q in enumerate(qs):
            text = f"Content:'q{j}' AND DataSize < {m} AND TopK=10 AND MaxResults=10"
            query = parse(text)
            t = time.perf_counter()
            page = search.search(ds, "v1", query)
            latencies.append(time.perf_counter() - t)
            plans.add(page.plan.splitlines()[2].split(":")[1].strip())
            t = time.perf_counter()
            expected = {f"dfm-{i:08d}" for i in (exact_top(data[:m], q) if m > 10
                                                 else range(m))}
            numpy_ms.append(time.perf_counter() - t)
            got = {meta.file_meta_id for meta, _ in page.items}
            found += len(got & expected)
            short += len(got) < min(10, m)
        filtered[s] = {"p50": float(np.percentile(latencies, 50) * 1000),
                       "p95": float(np.percentile(latencies, 95) * 1000),
                       "numpy_p50": float(np.percentile(numpy_ms, 50) * 1000),
                       "recall": found / (min(10, m) * len(qs)), "short": short,
                       "plan": ", ".join(sorted(plans)), "matches": m}
    store.close()
    release_embedded_postgres(Path(args.workdir) / "pg")  # the child ends with os._exit
    return {"latencies": [], "recall": filtered[args.selectivities[0]]["recall"],
            "insert_s": insert_s, "flush_s": flush_s, "metas_s": metas_s, "built": built,
            "table_mb": disk[0] / 2**20, "index_mb": disk[1] / 2**20, "filtered": filtered}


def child(args: argparse.Namespace) -> None:
    qs = queries(args.queries, args.dim, args.clusters)
    runner = {"numpy": run_numpy, "pgvector": run_pgvector}.get(args.backend, run_milvus)
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
               str(args.batch), "--clusters", str(args.clusters), "--workdir", workdir,
               "--ann", args.ann, "--selectivities",
               ",".join(str(s) for s in args.selectivities)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode != 0 or not lines:
            return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
        return json.loads(lines[-1])
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def filtered_rows(n: int, r: dict, args: argparse.Namespace) -> list[str]:
    lines = [f"pgvector at {n:,}: file metas COPY {r['metas_s']:.0f} s, vector upserts "
             f"{n / r['insert_s']:,.0f} rows/s ({r['insert_s']:.0f} s), {r['built']} in "
             f"{r['flush_s']:.0f} s; table {r['table_mb']:,.0f} MB of which ANN index "
             f"{r['index_mb']:,.0f} MB; ANN settings {args.ann}",
             "| filter (DataSize < m) | matches | plan | pgvector p50 ms | p95 ms | recall@10 "
             "| short results | numpy exact p50 ms |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for s, f in r["filtered"].items():
        lines.append(f"| {float(s):.2%} | {f['matches']:,} | {f['plan']} | {f['p50']:.1f} | "
                     f"{f['p95']:.1f} | {f['recall']:.3f} | {f['short']} | "
                     f"{f['numpy_p50']:.1f} |")
    return lines


def row(backend: str, n: int, r: dict) -> str:
    if "error" in r:
        return f"| {backend} | {n:,} | error: {r['error']} ||||||||"
    if not r["latencies"]:
        return f"| {backend} | {n:,} | see the filtered table below ||||||||"
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
    parser.add_argument("--backends", default="numpy,milvus-flat,pgvector")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=50, help="timed searches per backend")
    parser.add_argument("--batch", type=int, default=2000, help="records per upsert call")
    parser.add_argument("--clusters", type=int, default=0,
                        help="draw vectors around this many centres (0: uniform random)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per backend run")
    parser.add_argument("--ann", default="ivfflat",
                        help="pgvector's ANN index: ivfflat|hnsw|none, optionally with "
                             "AnnIndex fields, e.g. hnsw:m=16:ef_search=100 or ivfflat:probes=16")
    parser.add_argument("--selectivities", default="1,0.1,0.01,0.001,0.0001",
                        type=lambda s: [float(x) for x in s.split(",")],
                        help="pgvector: fractions of the files the filter keeps")
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
    later = []
    for n in (int(s) for s in args.sizes.split(",")):
        for backend in backends:
            result = measure(backend, n, args)
            print(row(backend, n, result), flush=True)
            if "filtered" in result:
                later += ["", *filtered_rows(n, result, args)]
    print("\n".join(later))


if __name__ == "__main__":
    main()
