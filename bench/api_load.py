"""Concurrent clients against the standalone API: 20 clients searching a 100k-file version for
30 s. Target: 0 errors, p50 <= 100 ms. Prints requests/s, p50, p95, p99 and errors.

The version is generated into the embedded default (the workspace's PostgreSQL) or, with
``--store sqlite``, an SQLite file. The server is the real one (``python -m
mmdm.airflow_plugin.api``) in its own process, one uvicorn worker; the clients are threads in
this process, each with its own keep-alive connection and the server's token, cycling through
a mix of gallery searches (tags, folders, names, a DSL, paging with NextToken).

    python bench/api_load.py                    # 100,000 files, 20 clients, 30 s
    python bench/api_load.py --clients 1        # one client alone, for comparison
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gallery import _meta  # noqa: E402
from mmdm.adapters.metadata import open_store  # noqa: E402
from mmdm.adapters.metadata.embedded import (  # noqa: E402
    release_embedded_postgres, workspace_store_url)

SEARCHES = [
    {"QueryTagsIncludeAny": "t3"},
    {"QueryFileDir": "dir_42"},
    {"QueryFileName": "img_12"},
    {"QueryExpression": "Tags.all='t1' AND NOT Tags.all='t2' AND FileName:'img_1'"},
    {"QueryExpression": "DataSize > 14000 AND FileDir:'dir_7'"},
    {},
]


def generate(url: str, n: int) -> str:
    import random

    store = open_store(url)
    ds = store.create_dataset("bench-api", "file:///bench")
    store.create_version(ds.dataset_id)
    rng = random.Random(7)
    for start in range(0, n, 20_000):
        store.upsert_file_metas(_meta(i, ds.dataset_id, rng)
                                for i in range(start, min(n, start + 20_000)))
    store.execute("ANALYZE")
    store.close()
    return ds.dataset_id


def serve(workspace: Path, store_url: str | None, port: int, token: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mmdm.airflow_plugin.api", "--workspace", str(workspace),
           "--port", str(port), "--token", token]
    if store_url:
        cmd += ["--store-url", store_url]
    log = open(workspace / "server.log", "wb")  # read back when a request failed
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/datasets", timeout=2,
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start")


def client(base: str, token: str, dataset_id: str, until: float, out: list, errors: list,
           offset: int) -> None:
    with httpx.Client(base_url=base, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        i = offset
        next_token = None
        while time.monotonic() < until:
            params = {**SEARCHES[i % len(SEARCHES)], "MaxResults": 40}
            if next_token and i % 3 == 0:  # page on through the previous search now and then
                params = {**SEARCHES[(i - 1) % len(SEARCHES)], "MaxResults": 40,
                          "NextToken": next_token}
            started = time.perf_counter()
            try:
                r = http.get(f"/api/v1/datasets/{dataset_id}/datasetfilemetas", params=params)
                ok = r.status_code == 200
                next_token = r.json().get("NextToken") if ok else None
            except httpx.HTTPError as exc:
                ok, r = False, exc
            out.append((time.perf_counter() - started) * 1000)
            if not ok:
                errors.append(str(getattr(r, "text", r))[:200])
            i += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--store", choices=["embedded", "sqlite"], default="embedded")
    ap.add_argument("--port", type=int, default=8097)
    args = ap.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="mmdm-bench-api-"))
    store_url = f"sqlite:///{workspace}/metadata.db" if args.store == "sqlite" else None
    started = time.perf_counter()
    dataset_id = generate(store_url or workspace_store_url(workspace), args.files)
    print(f"{args.files:,} files in a {args.store} store in {time.perf_counter() - started:.0f} s;"
          f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    token = "bench-token"
    proc = serve(workspace, store_url, args.port, token)
    try:
        base = f"http://127.0.0.1:{args.port}"
        # Warm-up: every search once, as a user's first look would.
        client(base, token, dataset_id, time.monotonic() + 3, [], [], 0)
        latencies: list[float] = []
        errors: list[str] = []
        until = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client, args=(base, token, dataset_id, until,
                                                         latencies, errors, k))
                   for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        proc.terminate()
        proc.wait(20)
    q = statistics.quantiles(latencies, n=100)
    print(f"{args.clients} clients, {args.seconds:.0f} s: {len(latencies) / args.seconds:.1f} "
          f"requests/s, p50 {q[49]:.0f} ms, p95 {q[94]:.0f} ms, p99 {q[98]:.0f} ms, "
          f"{len(errors)} errors{': ' + errors[0] if errors else ''}")
    if errors:
        print((workspace / "server.log").read_text(errors="replace")[-3000:])
    if store_url is None:
        release_embedded_postgres(workspace / "pg")  # stops it: the server has exited
    shutil.rmtree(workspace)


if __name__ == "__main__":
    main()
