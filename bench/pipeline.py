"""Model-call throughput of the tagging and indexing jobs against a fake DashScope server.

The fake answers after a fixed latency L in a separate process; the job runs at concurrency
C in {1, 5, 20}. Bound: C/L calls/s (tagging: one image per call; embeddings: B images per
call, so C*B/L files/s). Target: achieved >= 0.9 of the bound. Then an Increment re-run of the
unchanged version must make 0 model calls in <= 5 % of the full run's time.

    python bench/pipeline.py                 # L = 0.1 s
    python bench/pipeline.py --latency 0.2 --concurrency 1,5,20
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from mmdm.adapters.jobs import run_index_job, run_tagging_job  # noqa: E402
from mmdm.adapters.metadata import open_store  # noqa: E402
from mmdm.adapters.models import DashScopeEmbedder, DashScopeTagger  # noqa: E402
from mmdm.adapters.scan import build_file_metas  # noqa: E402
from tests.fakes.numpy_vectors import NumpyVectorStore  # noqa: E402

SERVER = """
import sys, time
from tests.fakes.fake_dashscope import FakeDashScope
fake = FakeDashScope(latency=float(sys.argv[1])).start()
print(fake.base_url, fake.api_key, flush=True)
time.sleep(3600)
"""


def start_fake(latency: float) -> tuple[subprocess.Popen, str, str]:
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(latency)], cwd=root,
                            stdout=subprocess.PIPE, text=True)
    base_url, key = proc.stdout.readline().split()  # type: ignore[union-attr]
    return proc, base_url, key


def make_dataset(store, root: Path, n: int) -> str:
    root.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (32, 24), (i % 256, i * 7 % 256, 50)).save(root / f"{i:05d}.png")
    ds = store.create_dataset(root.name, root.as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    return ds.dataset_id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--concurrency", default="1,5,20")
    ap.add_argument("--seconds", type=float, default=4.0, help="target length of each run")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mmdm-bench-pipeline-"))
    proc, base_url, key = start_fake(args.latency)
    store = open_store(str(work / "metadata.db"))
    store.create_prompt("bench", {"Crosswalk": "white stripes", "Tunnel": "a tunnel"})
    tagger = DashScopeTagger(api_key=key, base_url=base_url)
    embedder = DashScopeEmbedder(api_key=key, base_url=base_url,
                                 model="tongyi-embedding-vision-plus", dimension=64)
    batch = embedder.max_batch
    print(f"fake DashScope latency L = {args.latency:.3f} s; embedding batch B = {batch}")
    print(f"{'job':<9}{'C':>4}{'files':>7}{'seconds':>9}{'achieved':>11}{'bound':>9}"
          f"{'ratio':>7}  increment re-run")
    try:
        for c in (int(x) for x in args.concurrency.split(",")):
            for job in ("tagging", "indexing"):
                per_s = c / args.latency * (batch if job == "indexing" else 1)
                n = max(int(per_s * args.seconds), c * batch)
                ds = make_dataset(store, work / f"{job}-c{c}", n)
                t0 = time.perf_counter()
                if job == "tagging":
                    run = lambda mode: run_tagging_job(store, ds, "v1", tagger=tagger,  # noqa: E731
                                                       prompt="bench", mode=mode,
                                                       max_concurrency=c)
                else:
                    vectors = NumpyVectorStore(64)
                    run = lambda mode: run_index_job(store, ds, "v1", embedder=embedder,  # noqa: E731
                                                     vector_store=vectors, mode=mode,
                                                     max_concurrency=c)
                full = run("Full")
                t1 = time.perf_counter()
                again = run("Increment")
                t2 = time.perf_counter()
                assert full.failed == 0, full.to_dict()
                achieved = full.completed / (t1 - t0)
                print(f"{job:<9}{c:>4}{n:>7}{t1 - t0:>9.2f}{achieved:>9.1f}/s{per_s:>7.0f}/s"
                      f"{achieved / per_s:>7.2f}  {again.total} calls, {t2 - t1:.3f} s = "
                      f"{(t2 - t1) / (t1 - t0):.1%} of full", flush=True)
    finally:
        proc.kill()


if __name__ == "__main__":
    main()
