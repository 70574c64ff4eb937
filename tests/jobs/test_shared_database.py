"""One embedded PostgreSQL shared by many processes: four index shards of one version written at
once while two other processes search it, as Airflow's task processes and the api-server do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from mmdm.adapters.jobs.indexing import default_index_set_id
from mmdm.adapters.metadata import open_store
from mmdm.adapters.metadata.embedded import embedded_postgres_url
from mmdm.adapters.models import LocalImageEmbedder
from mmdm.adapters.vectors.pgvector import PgVectorStore
from tests.jobs.conftest import make_version

INDEXER = textwrap.dedent("""
    import sys
    from mmdm.adapters.jobs import run_index_job
    from mmdm.adapters.metadata import open_store
    from mmdm.adapters.metadata.embedded import embedded_postgres_url
    from mmdm.adapters.models import LocalImageEmbedder
    from mmdm.adapters.vectors.pgvector import PgVectorStore

    data_dir, ds, shard = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(embedded_postgres_url(data_dir))
    embedder = LocalImageEmbedder()
    summary = run_index_job(store, ds, "v1", embedder=embedder, shard=(shard, 4),
                            vector_store=PgVectorStore(store, "vecs", embedder.dimension),
                            max_concurrency=2)
    assert summary.status == "Succeeded", summary
    print(summary.completed)
""")

SEARCHER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from mmdm.adapters.metadata import open_store
    from mmdm.adapters.metadata.embedded import embedded_postgres_url
    from mmdm.adapters.vectors.pgvector import PgVectorStore

    data_dir, index_set, dimension, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    store = open_store(embedded_postgres_url(data_dir))
    vectors = PgVectorStore(store, "vecs", dimension)
    rng = np.random.default_rng(0)
    searches, deadline = 0, time.monotonic() + 120
    while time.monotonic() < deadline:
        vectors.search(rng.standard_normal(dimension), index_set_id=index_set, top_k=5)
        searches += 1
        if searches >= 3 and __import__("os").path.exists(stop):
            break
    print(searches)
""")


def test_four_shards_index_while_two_processes_search(tmp_path):
    data_dir = tmp_path / "pg"
    store = open_store(embedded_postgres_url(data_dir))  # this process holds the server too
    ds = make_version(store, tmp_path / "imgs", 80)
    dimension = LocalImageEmbedder().dimension
    index_set = default_index_set_id(ds, "v1", LocalImageEmbedder().model, dimension)
    stop = tmp_path / "indexers-done"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}

    def spawn(script: str, *args: object) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", script, str(data_dir), *map(str, args)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    searchers = [spawn(SEARCHER, index_set, dimension, stop) for _ in range(2)]
    indexers = [spawn(INDEXER, ds, shard) for shard in range(4)]
    results = [p.communicate(timeout=180) for p in indexers]
    stop.touch()
    searched = [p.communicate(timeout=180) for p in searchers]

    for proc, (out, err) in zip(indexers + searchers, results + searched, strict=True):
        assert proc.returncode == 0, err
        assert "lock" not in err.lower(), err
    assert sum(int(out) for out, _ in results) == 80  # the shards split the files exactly
    assert all(int(out) >= 3 for out, _ in searched)
    vectors = PgVectorStore(store, "vecs", dimension)
    ids = vectors.file_meta_ids(index_set)
    assert len(ids) == len(set(ids)) == 80  # exactly one vector per file
    assert store.fetchone("SELECT COUNT(*) FROM file_metas WHERE semantic_index_job_id IS NULL "
                          "AND status = 'ACTIVE'")[0] == 0
    store.close()
