"""Fault tests: throttling, server errors and timeouts through the real dashscope SDK, and a
job killed with SIGKILL that resumes with no duplicate vector and no lost tag."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from mmdm.adapters.jobs import RetryPolicy, run_index_job, run_tagging_job
from mmdm.adapters.models import DashScopeEmbedder, DashScopeTagger
from mmdm.adapters.vectors.milvus import MilvusVectorStore
from tests.fakes.fake_dashscope import INTERNAL_ERROR, THROTTLED, Failure
from tests.jobs.conftest import make_version

FAST_RETRY = RetryPolicy(max_attempts=2, base_delay_s=0.001, max_delay_s=0.01)


def _outcomes(store, job_id):
    return dict(store.fetchall("SELECT state, COUNT(*) FROM job_files WHERE job_id = ? "
                               "GROUP BY state", (job_id,)))


def test_thirty_percent_failures_end_each_file_done_or_failed(sqlite_store, fake_dashscope,
                                                             tmp_path):
    store = sqlite_store
    ds = make_version(store, tmp_path / "imgs", 60)
    fake_dashscope.failure_rate = 0.3
    fake_dashscope.fail_next(INTERNAL_ERROR, INTERNAL_ERROR, INTERNAL_ERROR,
                             Failure(429, "Throttling.RateQuota", "slow down", "0"))
    tagger = DashScopeTagger(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url)
    result = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="driving",
                             max_concurrency=5, retry=FAST_RETRY)
    outcomes = _outcomes(store, result.job_id)
    assert outcomes.get("DONE", 0) + outcomes.get("FAILED", 0) == 60
    assert (result.completed, result.failed) == (outcomes.get("DONE", 0),
                                                 outcomes.get("FAILED", 0))
    assert 0 < result.failed < 30  # two attempts at 30 %: about 9 % fail
    assert result.status == "PartialFailed" == store.get_job(result.job_id).status
    for _, reason in store.job_file_failures(result.job_id):
        assert "429" in reason or "500" in reason or "Throttling" in reason \
            or "InternalError" in reason
    tagged = store.fetchone("SELECT COUNT(*) FROM file_metas WHERE tagged_fingerprint IS NOT "
                            "NULL")[0]
    assert tagged == result.completed

    fake_dashscope.failure_rate = 0.0
    retry = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="driving", retry=FAST_RETRY)
    assert (retry.total, retry.completed, retry.status) == (result.failed, result.failed,
                                                            "Succeeded")


def test_retries_absorb_transient_errors(sqlite_store, fake_dashscope, tmp_path):
    store = sqlite_store
    ds = make_version(store, tmp_path / "imgs", 10)
    fake_dashscope.fail_next(THROTTLED, INTERNAL_ERROR, THROTTLED, INTERNAL_ERROR)
    tagger = DashScopeTagger(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url)
    result = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="driving",
                             retry=RetryPolicy(5, 0.001, 0.01), max_concurrency=1)
    assert (result.completed, result.failed, result.status) == (10, 0, "Succeeded")
    assert fake_dashscope.calls["chat"] == 14


def test_timeouts_are_recorded_failures(sqlite_store, fake_dashscope, tmp_path):
    store = sqlite_store
    ds = make_version(store, tmp_path / "imgs", 4)
    fake_dashscope.latency = 1.0
    tagger = DashScopeTagger(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url,
                             timeout=0.2)
    result = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="driving", retry=FAST_RETRY,
                             max_concurrency=4)
    assert (result.completed, result.failed, result.status) == (0, 4, "Failed")
    assert all("time" in why.lower() for _, why in store.job_file_failures(result.job_id))


def test_embedding_faults_leave_exactly_one_vector_per_done_file(sqlite_store, fake_dashscope,
                                                                tmp_path):
    store = sqlite_store
    ds = make_version(store, tmp_path / "imgs", 40)
    fake_dashscope.failure_rate = 0.3
    embedder = DashScopeEmbedder(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url,
                                 model="tongyi-embedding-vision-plus", dimension=64)
    vectors = MilvusVectorStore(str(tmp_path / "milvus.db"), "vecs", 64)
    first = run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors,
                          retry=FAST_RETRY, max_concurrency=3)
    index_set = first.extra["IndexSetId"]
    assert first.completed + first.failed == 40 and first.completed > 0
    assert vectors.count(index_set) == first.completed
    fake_dashscope.failure_rate = 0.0
    second = run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors,
                           retry=FAST_RETRY)
    assert second.total == first.failed
    ids = vectors.file_meta_ids(index_set)
    assert len(ids) == len(set(ids)) == 40


CHILD = textwrap.dedent("""
    import sys
    from mmdm.adapters.jobs import RetryPolicy, run_index_job, run_tagging_job
    from mmdm.adapters.metadata import open_store
    from mmdm.adapters.models import DashScopeEmbedder, DashScopeTagger
    from mmdm.adapters.vectors.milvus import MilvusVectorStore

    db, base_url, key, milvus, kind, ds, *owner = sys.argv[1:]
    store = open_store(db)
    if kind == "tag":
        tagger = DashScopeTagger(api_key=key, base_url=base_url)
        run_tagging_job(store, ds, "v1", tagger=tagger, prompt="driving", max_concurrency=2,
                        owner=owner[0] if owner else None)
    elif kind == "index-pgvector":
        from mmdm.adapters.vectors.pgvector import PgVectorStore

        embedder = DashScopeEmbedder(api_key=key, base_url=base_url,
                                     model="tongyi-embedding-vision-plus", dimension=64)
        run_index_job(store, ds, "v1", embedder=embedder, max_concurrency=2,
                      vector_store=PgVectorStore(store, "vecs", 64))
    else:
        embedder = DashScopeEmbedder(api_key=key, base_url=base_url,
                                     model="tongyi-embedding-vision-plus", dimension=64)
        run_index_job(store, ds, "v1", embedder=embedder, max_concurrency=2,
                      vector_store=MilvusVectorStore(milvus, "vecs", 64))
""")


def _run_and_kill(store, args, job_action, at_least):
    """Start a job in a real subprocess and SIGKILL it once ``at_least`` files are done."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args],
                             env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            done = store.fetchone(
                "SELECT COUNT(*) FROM job_files jf JOIN jobs j ON j.job_id = jf.job_id "
                "WHERE j.job_action = ?", (job_action,))[0]
            if done >= at_least:
                break
            assert child.poll() is None, "the job ended before it could be killed"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    job = store.list_jobs(args[5], "v1", job_action)[0]
    assert job.status == "Running"  # killed: nothing got to say otherwise
    return job


def test_killed_jobs_resume_without_duplicates_or_lost_tags(sqlite_store, fake_dashscope,
                                                            tmp_path):
    store = sqlite_store
    ds = make_version(store, tmp_path / "imgs", 60)
    fake_dashscope.latency = 0.05
    db, milvus = str(tmp_path / "metadata.db"), str(tmp_path / "milvus.db")
    args = [db, fake_dashscope.base_url, fake_dashscope.api_key, milvus]

    killed = _run_and_kill(store, [*args, "tag", ds], "IntelligentTag", 10)
    done_before = _outcomes(store, killed.job_id).get("DONE", 0)
    assert 10 <= done_before < 60
    tagger = DashScopeTagger(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url)
    calls = fake_dashscope.calls["chat"]
    resumed = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="driving",
                              resume_job_id=killed.job_id, max_concurrency=4)
    assert (resumed.job_id, resumed.status, resumed.completed) == (killed.job_id, "Succeeded", 60)
    assert fake_dashscope.calls["chat"] - calls == 60 - done_before  # only what was left
    per_file = store.fetchall("SELECT file_pk, COUNT(*) FROM file_tag_sets GROUP BY file_pk")
    assert len(per_file) == 60 and {n for _, n in per_file} == {1}
    untagged = store.fetchone("SELECT COUNT(*) FROM file_metas WHERE tag_job_id IS NULL")[0]
    assert untagged == 0

    killed = _run_and_kill(store, [*args, "index", ds], "SemanticIndex", 10)
    embedder = DashScopeEmbedder(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url,
                                 model="tongyi-embedding-vision-plus", dimension=64)
    vectors = MilvusVectorStore(milvus, "vecs", 64)
    resumed = run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors,
                            resume_job_id=killed.job_id)
    assert (resumed.status, resumed.completed) == ("Succeeded", 60)
    ids = vectors.file_meta_ids(resumed.extra["IndexSetId"])
    assert len(ids) == len(set(ids)) == 60


def test_killed_pgvector_index_job_never_reports_a_file_without_its_vector(
        pgvector_dsn, fake_dashscope, tmp_path):
    """Vectors and index state commit together: after a SIGKILL every file marked indexed has
    its vector and every vector its mark, and a plain resume finishes the rest."""
    from mmdm.adapters.metadata import open_store
    from mmdm.adapters.vectors.pgvector import PgVectorStore

    store = open_store(pgvector_dsn)
    ds = make_version(store, tmp_path / "imgs", 60)
    fake_dashscope.latency = 0.05
    args = [pgvector_dsn, fake_dashscope.base_url, fake_dashscope.api_key, "-"]
    killed = _run_and_kill(store, [*args, "index-pgvector", ds], "SemanticIndex", 10)

    def unmatched() -> tuple[int, int]:
        marked_only = store.fetchone(
            "SELECT COUNT(*) FROM file_metas f WHERE f.semantic_index_job_id IS NOT NULL AND "
            "NOT EXISTS (SELECT 1 FROM vecs v WHERE v.file_meta_id = f.file_meta_id)")[0]
        vector_only = store.fetchone(
            "SELECT COUNT(*) FROM vecs v JOIN file_metas f ON f.file_meta_id = v.file_meta_id "
            "WHERE f.semantic_index_job_id IS NULL")[0]
        return marked_only, vector_only

    done = _outcomes(store, killed.job_id).get("DONE", 0)
    assert 10 <= done < 60
    assert unmatched() == (0, 0)
    assert store.fetchone("SELECT COUNT(*) FROM vecs")[0] == done

    embedder = DashScopeEmbedder(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url,
                                 model="tongyi-embedding-vision-plus", dimension=64)
    vectors = PgVectorStore(store, "vecs", 64)
    calls = fake_dashscope.calls["embedding"]
    resumed = run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors,
                            resume_job_id=killed.job_id)
    assert (resumed.job_id, resumed.status, resumed.completed) == (killed.job_id, "Succeeded", 60)
    embedded = fake_dashscope.calls["embedding"] - calls
    assert embedded <= 60 - done  # nothing redone: no vector was lost
    ids = vectors.file_meta_ids(resumed.extra["IndexSetId"])
    assert len(ids) == len(set(ids)) == 60 and unmatched() == (0, 0)
    assert not any("had no vector" in line for line in store.job_logs(killed.job_id))
    store.close()


def test_a_retry_resumes_its_own_job_and_lost_workers_are_found(sqlite_store, fake_dashscope,
                                                                 tmp_path, monkeypatch):
    """The task instance that owned a killed job takes it over on retry; a job nobody comes
    back for is marked Failed (worker lost) by the next job or scan, and stays resumable."""
    from mmdm.adapters.scan import build_file_metas

    store = sqlite_store
    ds = make_version(store, tmp_path / "imgs", 40)
    fake_dashscope.latency = 0.05
    args = [str(tmp_path / "metadata.db"), fake_dashscope.base_url, fake_dashscope.api_key,
            str(tmp_path / "milvus.db")]
    owner = "airflow:pipeline/manual__1/smart_tag/-1"
    killed = _run_and_kill(store, [*args, "tag", ds, owner], "IntelligentTag", 8)
    done_before = _outcomes(store, killed.job_id).get("DONE", 0)
    tagger = DashScopeTagger(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url)
    calls = fake_dashscope.calls["chat"]
    retried = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="driving", owner=owner)
    assert (retried.job_id, retried.status, retried.completed) == (killed.job_id, "Succeeded", 40)
    assert fake_dashscope.calls["chat"] - calls == 40 - done_before

    store.update_prompt("driving", guide_prompt="Tag the driving scene.")  # all 40 pending
    lost = _run_and_kill(store, [*args, "tag", ds], "IntelligentTag", 8 + 40)
    monkeypatch.setattr("mmdm.adapters.metadata.store.LOST_AFTER_S", 0.2)
    monkeypatch.setattr("mmdm.adapters.scan.LOST_AFTER_S", 0.2)
    time.sleep(0.5)
    build_file_metas(store, ds, "v1")  # a scan of the version notices
    job = store.get_job(lost.job_id)
    assert job.status == "Failed" and job.result["error"].startswith("worker lost")
    assert any("worker lost" in line for line in store.job_logs(lost.job_id))
    resumed = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="driving",
                              resume_job_id=lost.job_id, mode="Full")
    assert (resumed.job_id, resumed.status) == (lost.job_id, "Succeeded")
