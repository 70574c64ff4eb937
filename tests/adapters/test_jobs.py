"""Tagging, revert and indexing jobs on the offline local model and Milvus Lite, for real."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from mmdm.adapters.errors import AdapterError
from mmdm.adapters.jobs import run_index_job, run_revert_job, run_tagging_job
from mmdm.adapters.models import LOCAL_TAG_DEFINITION, LocalImageEmbedder, LocalPixelTagger
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.vectors.milvus import MilvusVectorStore

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220),
           "white": (255, 255, 255), "black": (0, 0, 0)}


class Counting:
    """Counts calls into a real model client (the local one) to prove what Increment skips."""

    def __init__(self, inner, fail_on: set[str] | None = None):
        self.inner, self.calls, self.fail_on = inner, 0, fail_on or set()
        self._lock = threading.Lock()
        for name in ("model", "dimension", "max_batch", "supports_text"):
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def _count(self, uris):
        with self._lock:
            self.calls += 1
        bad = [u for u in uris if any(f in u for f in self.fail_on)]
        if bad:
            raise ValueError(f"cannot read {bad[0]}")

    def tag(self, image, definition, *, describe=False):
        self._count([image.uri])
        return self.inner.tag(image, definition, describe=describe)

    def embed_images(self, images):
        self._count([i.uri for i in images])
        return self.inner.embed_images(images)


@pytest.fixture
def version(store, tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for i, (name, rgb) in enumerate(COLOURS.items()):
        for j in range(3):
            im = Image.new("RGB", (96 + 16 * j, 80), rgb)
            im.putpixel((j, j), (128, 128, 128))
            im.save(root / f"{name}_{j}.png")
    ds = store.create_dataset("colours", root.as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    store.create_prompt("pixels", LOCAL_TAG_DEFINITION.tags,
                        guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    return ds.dataset_id, root


def _metas(store, ds):
    return {m.file_name: m for m in store.iter_file_metas(ds, "v1")}


def test_tagging_writes_ai_tags_and_increment_skips_done_files(store, version):
    ds, root = version
    tagger = Counting(LocalPixelTagger())
    first = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels", max_concurrency=3,
                            describe=True)
    assert (first.status, first.total, first.completed, first.failed) == ("Succeeded", 15, 15, 0)
    metas = _metas(store, ds)
    assert "red" in metas["red_0.png"].tags_ai and "blue" in metas["blue_2.png"].tags_ai
    assert "over-exposed" in metas["white_1.png"].tags_all
    assert "under-exposed" in metas["black_0.png"].tags_ai
    assert metas["red_0.png"].tag_job_id == first.job_id and metas["red_0.png"].description
    job = store.get_job(first.job_id)
    assert job.status == "Succeeded" and job.completed_file_count == 15
    assert any(line.split(" ", 2)[2].startswith("INFO: Job finished") for line in
               store.job_logs(first.job_id))

    calls = tagger.calls
    again = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels")
    assert (again.total, tagger.calls - calls) == (0, 0)

    Image.new("RGB", (90, 90), COLOURS["green"]).save(root / "red_0.png")  # content changed
    build_file_metas(store, ds, "v1")
    third = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels")
    assert (third.total, tagger.calls - calls) == (1, 1)
    tags = _metas(store, ds)["red_0.png"].tags_ai
    assert "green" in tags and "red" not in tags

    full = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels", mode="Full")
    assert full.total == 15


def test_increment_applies_a_new_revision_and_a_second_definition(store, version):
    """Increment is per definition revision: a new revision re-tags every file once, a second
    definition tags every file once, and neither re-tags what it already did."""
    ds, _ = version
    tagger = Counting(LocalPixelTagger())
    assert run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels").completed == 15
    store.update_prompt("pixels", guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt + " Be brief.")
    revised = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels")
    assert (revised.total, revised.completed) == (15, 15)
    assert run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels").total == 0

    store.create_prompt("colours-only", {"red": "red things", "blue": "blue things"})
    calls = tagger.calls
    other = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="colours-only")
    assert (other.total, tagger.calls - calls) == (15, 15)
    assert run_tagging_job(store, ds, "v1", tagger=tagger, prompt="colours-only").total == 0
    assert run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels").total == 0


def test_a_full_job_redoes_files_done_in_the_millisecond_it_began(store, version, tmp_path,
                                                                   frozen_clock):
    """Full skips only what another job did after it was created: the work of a job that
    ended in the same millisecond (one after the other, on a fast machine) is redone."""
    ds, _ = version
    run_tagging_job(store, ds, "v1", tagger=LocalPixelTagger(), prompt="pixels")
    tags = run_tagging_job(store, ds, "v1", tagger=LocalPixelTagger(), prompt="pixels",
                           mode="Full")
    assert (tags.total, tags.completed) == (15, 15)
    embedder = LocalImageEmbedder()
    vectors = MilvusVectorStore(str(tmp_path / "milvus.db"), "vecs", embedder.dimension)
    run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors)
    index = run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors, mode="Full")
    assert (index.total, index.completed) == (15, 15)


def test_per_file_failures_are_recorded_and_retried_by_increment(store, version):
    ds, _ = version
    broken = Counting(LocalPixelTagger(), fail_on={"black_"})
    result = run_tagging_job(store, ds, "v1", tagger=broken, prompt="pixels")
    assert (result.status, result.completed, result.failed) == ("PartialFailed", 12, 3)
    failures = store.job_file_failures(result.job_id)
    assert len(failures) == 3 and all("cannot read" in why for _, why in failures)
    fixed = run_tagging_job(store, ds, "v1", tagger=LocalPixelTagger(), prompt="pixels")
    assert (fixed.total, fixed.completed) == (3, 3)


def test_a_job_whose_every_file_failed_ends_failed_not_partial(store, version):
    """Failed, not PartialFailed, when nothing succeeded (a wrong key, a dead service): the
    operators fail the task on it whatever max_failed_fraction says."""
    ds, _ = version
    broken = Counting(LocalPixelTagger(), fail_on={"_"})  # every file name has one
    result = run_tagging_job(store, ds, "v1", tagger=broken, prompt="pixels")
    assert (result.status, result.completed, result.failed) == ("Failed", 0, 15)
    assert store.get_job(result.job_id).status == "Failed"


def test_revert_removes_exactly_the_jobs_tags(store, version):
    ds, _ = version
    store.create_prompt("mine", {"red": "red things"})
    mine = run_tagging_job(store, ds, "v1", tagger=LocalPixelTagger(), prompt="mine")
    pixels = run_tagging_job(store, ds, "v1", tagger=LocalPixelTagger(), prompt="pixels")
    red = _metas(store, ds)["red_1.png"]
    store.update_user_tags(red.file_meta_id, user_add=["keep me"])
    assert {"red", "keep me"} <= set(_metas(store, ds)["red_1.png"].tags_all)
    run_revert_job(store, ds, "v1", tag_job_id=pixels.job_id)
    after = _metas(store, ds)
    assert after["red_1.png"].tags_ai == ["red"]  # written by the other definition's job
    assert after["red_1.png"].tags_all == ["red", "keep me"]
    assert after["white_0.png"].tags_ai == []
    run_revert_job(store, ds, "v1", tag_job_id=mine.job_id)
    assert _metas(store, ds)["red_1.png"].tags_all == ["keep me"]
    assert [j.status for j in store.list_jobs(ds, "v1", "IntelligentTagRevert")] == [
        "Succeeded", "Succeeded"]


def test_shards_split_a_version_without_overlap(store, version):
    ds, _ = version
    done = []
    for index in range(3):
        s = run_tagging_job(store, ds, "v1", tagger=LocalPixelTagger(), prompt="pixels",
                            shard=(index, 3), mode="Full")
        done += [k for k, in store.fetchall(
            "SELECT file_key FROM job_files WHERE job_id = ?", (s.job_id,))]
    assert len(done) == len(set(done)) == 15


def test_a_stop_request_ends_the_job_manually_stopped(store, version, monkeypatch):
    ds, _ = version
    monkeypatch.setattr("mmdm.adapters.jobs.runner.STATUS_CHECK_S", 0.0)

    class Stopper(Counting):
        def tag(self, image, definition, *, describe=False):
            if self.calls == 2:
                job = store.list_jobs(ds, "v1", "IntelligentTag")[0]
                store.request_job_stop(job.job_id)
            return super().tag(image, definition, describe=describe)

    result = run_tagging_job(store, ds, "v1", tagger=Stopper(LocalPixelTagger()),
                             prompt="pixels", max_concurrency=1)
    assert result.status == "ManuallyStop" and 0 < result.completed < 15
    assert store.get_job(result.job_id).status == "ManuallyStop"


def test_index_job_upserts_once_and_follows_deletes(store, version, tmp_path):
    ds, root = version
    embedder = Counting(LocalImageEmbedder())
    vectors = MilvusVectorStore(str(tmp_path / "milvus.db"), "vecs", embedder.dimension)
    first = run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors,
                          max_concurrency=2)
    index_set = first.extra["IndexSetId"]
    assert (first.status, first.completed) == ("Succeeded", 15)
    assert vectors.count(index_set) == 15
    meta = _metas(store, ds)["blue_1.png"]
    assert meta.semantic_index_job_id == first.job_id and meta.semantic_index_update_time

    calls = embedder.calls
    again = run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors)
    assert (again.total, embedder.calls - calls) == (0, 0)
    full = run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors, mode="Full")
    assert full.completed == 15 and vectors.count(index_set) == 15  # upserts: no duplicates
    assert sorted(vectors.file_meta_ids(index_set)) == sorted(
        m.file_meta_id for m in _metas(store, ds).values())

    (root / "blue_1.png").unlink()
    build_file_metas(store, ds, "v1")
    cleanup = run_index_job(store, ds, "v1", embedder=embedder, vector_store=vectors)
    assert cleanup.extra["RemovedVectors"] == 1 and vectors.count(index_set) == 14
    assert meta.file_meta_id not in vectors.file_meta_ids(index_set)

    probe = LocalImageEmbedder().embed_images([_input(root / "green_2.png")])[0]
    hits = vectors.search(np.asarray(probe), index_set_id=index_set, top_k=3)
    assert hits[0].file_meta_id == _metas(store, ds)["green_2.png"].file_meta_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)


def _input(path):
    from mmdm.adapters.models import ImageInput

    return ImageInput(path.as_uri(), path.read_bytes(), "image/png")


def test_resume_redoes_files_whose_vectors_were_lost(store, version, tmp_path):
    """A killed job can have reported files done whose vectors never became durable (Milvus
    Lite keeps recent writes in memory): resuming it puts them back."""
    ds, _ = version
    vectors = MilvusVectorStore(str(tmp_path / "milvus.db"), "vecs", 256)
    first = run_index_job(store, ds, "v1", embedder=LocalImageEmbedder(), vector_store=vectors)
    index_set = first.extra["IndexSetId"]
    lost = sorted(vectors.file_meta_ids(index_set))[:4]
    vectors.delete(index_set, lost)
    assert vectors.count(index_set) == 11
    resumed = run_index_job(store, ds, "v1", embedder=LocalImageEmbedder(),
                            vector_store=vectors, resume_job_id=first.job_id)
    assert (resumed.status, resumed.completed) == ("Succeeded", 15)
    assert sorted(vectors.file_meta_ids(index_set)) == sorted(
        m.file_meta_id for m in _metas(store, ds).values())
    assert any("had no vector" in line for line in store.job_logs(first.job_id))


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_second_job_on_a_busy_version_is_refused_unless_shards_split_it(store, version):
    """SQLite only: on PostgreSQL jobs split a busy version (tests/jobs/test_concurrent_jobs)."""
    assert not store.shares_work
    ds, _ = version
    busy = store.create_job(ds, "v1", "IntelligentTag", job_spec={"shard": [0, 2]})
    store.start_job(busy.job_id)  # running, and beating
    tagger = Counting(LocalPixelTagger())
    with pytest.raises(AdapterError, match=f"job {busy.job_id} is running") as refused:
        run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels")
    assert refused.value.retriable and tagger.calls == 0
    other = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels", shard=(1, 2))
    assert other.status == "Succeeded" and 0 < other.completed < 15  # the other shard's files
    with pytest.raises(AdapterError, match="split the work into shards"):
        run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels", shard=(0, 2))
    store.finish_job(busy.job_id, "Succeeded")
    rest = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels")
    assert rest.completed == 15 - other.completed  # no file sent to the model twice
