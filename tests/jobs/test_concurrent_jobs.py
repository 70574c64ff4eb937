"""Jobs of one version running at once on PostgreSQL split its files through claims: each
file goes to the model once, no job waits on or deadlocks with another, and a killed job's
claims lapse. Each job has its own connection, as two Airflow task processes would."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from mmdm.adapters.jobs import run_index_job, run_tagging_job
from mmdm.adapters.metadata import open_store
from mmdm.adapters.metadata.store import LOST_AFTER_S
from mmdm.adapters.models import LOCAL_TAG_DEFINITION, LocalImageEmbedder, LocalPixelTagger
from mmdm.adapters.timeutil import now_ms
from mmdm.adapters.vectors.pgvector import PgVectorStore
from tests.jobs.conftest import make_version

N = 40


class SlowRecorder:
    """A local model that takes a while per call and records every file it is sent."""

    def __init__(self, inner, *, max_batch: int = 4, delay_s: float = 0.01,
                 after: SlowRecorder | None = None):
        self.inner, self.delay_s, self.max_batch = inner, delay_s, max_batch
        self.model = inner.model
        self.dimension = getattr(inner, "dimension", None)
        self.sent: list[str] = []
        self.after = after  # answers only once that model's job has finished
        self.job_done = threading.Event()
        self._lock = threading.Lock()

    def _record(self, uris: list[str]) -> None:
        with self._lock:
            self.sent += uris
        if self.after is not None:
            assert self.after.job_done.wait(60)
        time.sleep(self.delay_s)

    def tag(self, image, definition, *, describe=False):
        self._record([image.uri])
        return self.inner.tag(image, definition, describe=describe)

    def embed_images(self, images):
        self._record([i.uri for i in images])
        return self.inner.embed_images(images)


@pytest.fixture
def pg_version(pg_dsn, tmp_path):
    store = open_store(pg_dsn)
    ds = make_version(store, tmp_path / "imgs", N)
    store.create_prompt("pixels", LOCAL_TAG_DEFINITION.tags,
                        guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    yield store, ds
    store.close()


def _models(inner) -> list[SlowRecorder]:
    """The second job's model holds its first files until the first job has finished: the
    second then claims again after the first released its claims, where a Full job could
    take files the first one did."""
    first = SlowRecorder(inner)
    return [first, SlowRecorder(inner, after=first)]


def _at_once(dsn: str, job, models: list[SlowRecorder]):
    """``job(store, model)`` for both models at the same moment, each on its own connection."""
    stores = [open_store(dsn) for _ in models]
    start = threading.Barrier(len(models))

    def run(store, model):
        start.wait()
        try:
            return job(store, model)
        finally:
            model.job_done.set()

    try:
        with ThreadPoolExecutor(len(models)) as pool:
            futures = [pool.submit(run, s, m) for s, m in zip(stores, models)]
            return [f.result(timeout=120) for f in futures]  # a deadlock error raises here
    finally:
        for s in stores:
            s.close()


def _assert_split(store, ds, summaries, models: list[SlowRecorder]) -> None:
    uris = {m.uri for m in store.iter_file_metas(ds, "v1")}
    assert len(uris) == N
    sent = Counter(u for m in models for u in m.sent)
    assert sent == Counter(uris)  # every file sent exactly once in all
    assert [s.status for s in summaries] == ["Succeeded", "Succeeded"]
    assert all(s.completed > 0 for s in summaries), summaries  # both did a share
    assert sum(s.completed for s in summaries) == N
    assert all(s.total == s.completed for s in summaries)  # the final total is exact
    # README: "a sharing job's TotalFileCount is an upper bound until it ends": each began
    # with the whole version as its total; each record ends with the files it did.
    for s in summaries:
        assert any(f"up to {N} files" in line for line in store.job_logs(s.job_id))
        assert store.get_job(s.job_id).total_file_count == s.completed < N
    assert store.fetchone("SELECT COUNT(*) FROM work_claims")[0] == 0  # released at finish


def _tag(mode="Increment"):
    return lambda s, model: run_tagging_job(s, "faults", "v1", tagger=model, prompt="pixels",
                                            mode=mode, max_concurrency=2)


def test_two_tagging_jobs_split_a_version(pg_version, pg_dsn):
    store, ds = pg_version
    models = _models(LocalPixelTagger())
    summaries = _at_once(pg_dsn, _tag(), models)
    _assert_split(store, ds, summaries, models)
    writers = Counter(j for (j,) in store.fetchall("SELECT job_id FROM file_tag_sets"))
    assert writers == {s.job_id: s.completed for s in summaries}


def test_two_full_tagging_jobs_split_a_version(pg_version, pg_dsn):
    store, ds = pg_version
    run_tagging_job(store, ds, "v1", tagger=LocalPixelTagger(), prompt="pixels")  # all tagged
    models = _models(LocalPixelTagger())
    summaries = _at_once(pg_dsn, _tag("Full"), models)
    _assert_split(store, ds, summaries, models)
    # Tags another job wrote before this one was created do not count: Full re-tags them.
    model = SlowRecorder(LocalPixelTagger(), delay_s=0)
    again = run_tagging_job(store, ds, "v1", tagger=model, prompt="pixels", mode="Full")
    assert again.completed == N and len(model.sent) == N


@pytest.mark.parametrize("mode", ["Increment", "Full"])
def test_two_index_jobs_split_a_version(pgvector_dsn, tmp_path, mode):
    store = open_store(pgvector_dsn)
    ds = make_version(store, tmp_path / "imgs", N)
    dimension = LocalImageEmbedder().dimension
    if mode == "Full":  # everything indexed already
        run_index_job(store, ds, "v1", embedder=LocalImageEmbedder(),
                      vector_store=PgVectorStore(store, "vecs", dimension))
    models = _models(LocalImageEmbedder())

    def index(s, model):
        return run_index_job(s, ds, "v1", embedder=model, max_concurrency=2, mode=mode,
                             vector_store=PgVectorStore(s, "vecs", dimension))

    summaries = _at_once(pgvector_dsn, index, models)
    _assert_split(store, ds, summaries, models)
    ids = PgVectorStore(store, "vecs", dimension).file_meta_ids(
        summaries[0].extra["IndexSetId"])
    assert len(ids) == len(set(ids)) == N  # one vector per file
    store.close()


def _started_job(store, ds) -> str:
    job = store.create_job(ds, "v1", "IntelligentTag", job_mode="Increment")
    store.start_job(job.job_id)
    return job.job_id


def _claim(store, ds, job_id: str, limit: int):
    prompt = store.get_prompt("pixels")
    return store.claim_pending_files(
        ds, "v1", job_id=job_id, target="tag", mode="Increment", after_pk=0, limit=limit,
        definition=(prompt.prompt_id, prompt.revision),
        claim=f"tag:{prompt.prompt_id}:{prompt.revision}", lost_after_s=LOST_AFTER_S)


def _stop_beating(store, job_id: str) -> None:
    """The worker died: the job still says Running, but its beat stopped long ago."""
    store.execute("UPDATE jobs SET heartbeat_time = ? WHERE job_id = ?",
                  (now_ms() - int(10 * LOST_AFTER_S * 1000), job_id))


def test_a_killed_jobs_claims_lapse(pg_version):
    store, ds = pg_version
    killed = _started_job(store, ds)
    held, _ = _claim(store, ds, killed, N // 2)
    assert len(held) == N // 2
    # While it beats, another job runs beside it (not refused) and leaves its files alone.
    model = SlowRecorder(LocalPixelTagger(), delay_s=0)
    beside = run_tagging_job(store, ds, "v1", tagger=model, prompt="pixels")
    assert (beside.status, beside.completed, beside.total) == ("Succeeded", N // 2, N // 2)
    assert not {m.uri for m in held} & set(model.sent)

    _stop_beating(store, killed)
    taker = _started_job(store, ds)
    taken, _ = _claim(store, ds, taker, N)
    assert [m.pk for m in taken] == [m.pk for m in held]
    store.finish_job(taker, "ManuallyStop")
    # And a job run now does the killed job's files (marking it Failed, resumable, first).
    after = run_tagging_job(store, ds, "v1", tagger=model, prompt="pixels")
    assert (after.status, after.completed) == ("Succeeded", N // 2)
    assert Counter(model.sent) == Counter(m.uri for m in store.iter_file_metas(ds, "v1"))
    assert store.get_job(killed).status == "Failed"


def test_a_job_takes_the_files_of_one_that_dies_while_it_runs(pg_version):
    store, ds = pg_version
    killed = _started_job(store, ds)
    held, _ = _claim(store, ds, killed, N // 4)  # the first files: the runner passes them

    class Killing(SlowRecorder):
        def tag(self, image, definition, *, describe=False):
            if not self.sent:
                _stop_beating(store, killed)
            return super().tag(image, definition, describe=describe)

    model = Killing(LocalPixelTagger(), delay_s=0)
    summary = run_tagging_job(store, ds, "v1", tagger=model, prompt="pixels")
    assert (summary.status, summary.completed) == ("Succeeded", N)
    assert Counter(model.sent) == Counter(m.uri for m in store.iter_file_metas(ds, "v1"))
    assert model.sent[0] not in {m.uri for m in held}  # it started past the live claims
