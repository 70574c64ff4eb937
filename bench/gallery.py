"""Gallery first-screen latency on a big version, cold and warm: the list call for the first
page of 40 (with its thumbnail URLs) against the real standalone server. Target: under 1 s.

Generates N file metas (default 1M) with a few Pareto-ish tags each into the workspace's
embedded PostgreSQL (the default store; ``--store`` names another, e.g. an SQLite file), then
times the first page of a few gallery searches: everything, a tag filter, a folder match and a
DSL mixing them. Cold is what a user meets opening the gallery on data nobody read lately: per
search the server and its embedded database are stopped, the page cache is emptied
(``drop_caches``, else said), both are started again and the first request is timed (its
TotalCount included). Warm: the median of the next runs.

    python bench/gallery.py                      # 1,000,000 metas in a temp workspace
    python bench/gallery.py --n 200000 --store sqlite
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.page_cache import drop_page_cache  # noqa: E402
from mmdm.adapters.metadata import FileMeta, open_store  # noqa: E402
from mmdm.adapters.metadata.embedded import (  # noqa: E402
    release_embedded_postgres, workspace_store_url)

TAGS = [f"t{i}" for i in range(200)]
SEARCHES = {
    "all files": {},
    "tag t3": {"QueryTagsIncludeAny": "t3"},
    "dir match": {"QueryFileDir": "dir_42"},
    "dsl": {"QueryExpression": "Tags.all='t1' AND NOT Tags.all='t2' AND FileName:'img_1'"},
}
TOKEN = "bench-token"


def _meta(i: int, dataset_id: str, rng: random.Random) -> FileMeta:
    folder = f"dir_{i % 500}"
    k = min(int(rng.paretovariate(1.5)), 6) - 1  # 0-5 tags, most files few
    tags = rng.sample(TAGS[: 10 + i % 190], k) if k > 0 else []
    t = 1_700_000_000_000 + i * 1000
    return FileMeta(
        file_meta_id=f"{i:064x}", dataset_id=dataset_id, dataset_version="v1",
        uri=f"file:///bench/{folder}/img_{i}.jpg", file_name=f"img_{i}.jpg", file_dir=folder,
        data_size=10_000 + i % 5000, file_fingerprint=f"fp{i}", file_create_time=t,
        file_update_time=t, file_type="image", content_type="image/jpeg",
        meta_attributes={"ImageWidth": 640, "ImageHeight": 480}, tags_ai=tags)


def generate(url: str, n: int, batch: int = 20_000) -> str:
    store = open_store(url)
    ds = store.create_dataset("bench-gallery", "file:///bench")
    store.create_version(ds.dataset_id)
    rng = random.Random(7)
    started = time.perf_counter()
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        store.upsert_file_metas(_meta(i, ds.dataset_id, rng) for i in range(start, stop))
    store.execute("VACUUM ANALYZE" if store.dialect == "postgres" else "ANALYZE")
    print(f"inserted {n:,} metas in {time.perf_counter() - started:.1f} s", flush=True)
    store.close()
    return ds.dataset_id


def evict() -> str:
    if drop_page_cache():
        return "the page cache emptied (drop_caches)"
    return "the page cache NOT emptied (drop_caches needs root): cold is only a restart"


class Server:
    """The standalone API server (``python -m mmdm.airflow_plugin.api``) on the workspace."""

    def __init__(self, workspace: Path, store_url: str | None, port: int):
        cmd = [sys.executable, "-m", "mmdm.airflow_plugin.api", "--workspace", str(workspace),
               "--port", str(port), "--token", TOKEN]
        if store_url:
            cmd += ["--store-url", store_url]
        self.log = open(workspace / "server.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                   headers={"Authorization": f"Bearer {TOKEN}"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # up: the route answers without touching the data
            try:
                if self.client.get("/api/v1/datasets/none").status_code == 404:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit(f"the server did not start: see {workspace / 'server.log'}")

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()  # its exit stops the embedded database it was the last user of
        self.proc.wait(60)
        self.log.close()


def first_screen(client: httpx.Client, dataset_id: str, params: dict) -> tuple[float, int]:
    params = dict(params)
    if "QueryExpression" in params:  # options go inside an expression
        params["QueryExpression"] += " AND MaxResults=40 AND ThumbnailMode='m_fill,w_240,h_180'"
    else:
        params |= {"MaxResults": 40, "ThumbnailMode": "m_fill,w_240,h_180"}
    t = time.perf_counter()
    r = client.get(f"/api/v1/datasets/{dataset_id}/datasetfilemetas", params=params)
    elapsed = time.perf_counter() - t
    body = r.json()
    assert r.status_code == 200 and ([m["ThumbnailUrl"] for m in body["DatasetFileMetas"]]
                                     or body["TotalCount"] == 0), body
    return elapsed, body["TotalCount"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", choices=["embedded", "sqlite"], default="embedded")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="mmdm-bench-gallery-"))
    store_url = f"sqlite:///{workspace}/metadata.db" if args.store == "sqlite" else None
    try:
        dataset_id = generate(store_url or workspace_store_url(workspace), args.n)
        release_embedded_postgres(workspace / "pg")  # stopped: the server starts it cold
        print(f"{'first screen (40 items)':24} {'cold s':>8} {'warm s':>8} {'matches':>10}"
              f"   ({args.store} store, load average {os.getloadavg()[0]:.1f})", flush=True)
        worst, how = 0.0, ""
        for name, params in SEARCHES.items():
            how = evict()
            server = Server(workspace, store_url, args.port)
            try:
                cold, total = first_screen(server.client, dataset_id, params)
                warm = statistics.median(first_screen(server.client, dataset_id, params)[0]
                                         for _ in range(args.runs))
            finally:
                server.stop()
            worst = max(worst, cold, warm)
            print(f"{name:24} {cold:8.3f} {warm:8.3f} {total:10,}", flush=True)
        print(f"cold: server and database restarted, {how}")
        print(f"slowest first screen: {worst:.3f} s "
              f"({'under' if worst < 1 else 'OVER'} the 1 s target)")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
