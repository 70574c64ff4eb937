"""Promises README.md makes about the library that no other test pinned down: each test is
named after the promise it protects and fails when that promise breaks.

Real parts only: the metadata stores on both engines, local files, the offline local model,
Milvus Lite, and the fake OSS and DashScope servers.
"""

from __future__ import annotations

import io
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from mmdm.adapters.errors import AdapterError
from mmdm.adapters.ids import file_meta_id
from mmdm.adapters.jobs import RetryPolicy, run_index_job, run_tagging_job
from mmdm.adapters.jobs.runner import call_with_retries
from mmdm.adapters.metadata import open_store
from mmdm.adapters.models import (
    LOCAL_TAG_DEFINITION, DashScopeTagger, ImageInput, LocalImageEmbedder, LocalPixelTagger,
)
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.storage import OssConfig, OssStorage
from mmdm.adapters.timeutil import now_ms
from mmdm.adapters.vectors.milvus import MilvusVectorStore
from tests.adapters.imagefiles import image_bytes
from tests.fakes.fake_dashscope import Failure
from tests.jobs.conftest import make_version


def _colour_version(store, root, colours):
    root.mkdir(parents=True, exist_ok=True)
    for name, rgb in colours.items():
        im = Image.new("RGB", (96, 80), rgb)
        im.putpixel((1, 1), (128, 128, 128))
        im.save(root / f"{name}.png")
    ds = store.create_dataset("promises", root.as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    return ds.dataset_id


def _embed(path):
    image = ImageInput(path.as_uri(), path.read_bytes(), "image/png")
    return np.asarray(LocalImageEmbedder().embed_images([image])[0])


# README, FileMetaBuild: "a changed file is re-read and its meta updated (tags are kept; the new
# fingerprint marks it for re-tagging and re-indexing)".
def test_a_changed_file_is_reindexed_by_the_next_increment_index_job(store, tmp_path):
    root = tmp_path / "imgs"
    colours = {"red": (220, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220),
               "grey": (120, 120, 120)}
    ds = _colour_version(store, root, colours)
    vectors = MilvusVectorStore(str(tmp_path / "milvus.db"), "vecs", LocalImageEmbedder().dimension)
    first = run_index_job(store, ds, "v1", embedder=LocalImageEmbedder(), vector_store=vectors)
    index_set = first.extra["IndexSetId"]
    assert (first.status, first.completed) == ("Succeeded", 4)

    red = root / "red.png"
    red_id = file_meta_id(ds, "v1", red.as_uri())
    old_vector = _embed(red)
    Image.new("RGB", (64, 64), (250, 250, 250)).save(red)  # new content under the same name
    os.utime(red, (1_800_000_000, 1_800_000_000))
    assert build_file_metas(store, ds, "v1").changed == 1

    again = run_index_job(store, ds, "v1", embedder=LocalImageEmbedder(), vector_store=vectors)
    assert (again.status, again.total, again.completed) == ("Succeeded", 1, 1)
    assert store.get_file_meta(red_id).semantic_index_job_id == again.job_id
    assert vectors.count(index_set) == 4  # replaced, not added

    new_vector = _embed(red)
    assert float(old_vector @ new_vector) < 0.99  # the new content embeds elsewhere
    hit = vectors.search(new_vector, index_set_id=index_set, top_k=1)[0]
    assert hit.file_meta_id == red_id and hit.score == pytest.approx(1.0, abs=1e-4)
    assert run_index_job(store, ds, "v1", embedder=LocalImageEmbedder(),
                         vector_store=vectors).total == 0


class _PeakCounting:
    """The real local tagger, counting the calls in flight at once."""

    model = LocalPixelTagger.model

    def __init__(self):
        self.inner = LocalPixelTagger()
        self.now = self.peak = self.calls = 0
        self._lock = threading.Lock()

    def tag(self, image, definition, *, describe=False):
        with self._lock:
            self.now += 1
            self.calls += 1
            self.peak = max(self.peak, self.now)
        try:
            time.sleep(0.03)
            return self.inner.tag(image, definition, describe=describe)
        finally:
            with self._lock:
                self.now -= 1


# README, jobs: "bounded concurrency" (SmartTagOperator: "max concurrency").
@pytest.mark.parametrize("bound", [1, 3])
def test_max_concurrency_bounds_the_model_calls_in_flight(store, tmp_path, bound):
    colours = {f"c{i}": (i * 17 % 256, i * 41 % 256, i * 73 % 256) for i in range(12)}
    ds = _colour_version(store, tmp_path / "imgs", colours)
    store.create_prompt("pixels", LOCAL_TAG_DEFINITION.tags,
                        guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    tagger = _PeakCounting()
    result = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels",
                             max_concurrency=bound)
    assert (result.status, result.completed, tagger.calls) == ("Succeeded", 12, 12)
    assert tagger.peak == bound  # used, and never exceeded


# README, jobs: "retries with exponential backoff and jitter honouring `Retry-After`".
def test_a_services_retry_after_is_waited_for_before_the_retry(store, tmp_path,
                                                               fake_dashscope):
    ds = make_version(store, tmp_path / "imgs", 1)
    fake_dashscope.fail_next(Failure(429, "Throttling.RateQuota", "slow down", "1.2"))
    tagger = DashScopeTagger(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url)
    started = time.monotonic()
    result = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="driving",
                             retry=RetryPolicy(max_attempts=3, base_delay_s=0.001,
                                               max_delay_s=0.01))
    elapsed = time.monotonic() - started
    assert (result.status, result.completed, fake_dashscope.calls["chat"]) == ("Succeeded", 1, 2)
    assert elapsed >= 1.2  # the backoff alone would have waited 10 ms at most


def test_retry_delays_back_off_exponentially_with_jitter():
    policy = RetryPolicy(max_attempts=6, base_delay_s=0.1, max_delay_s=1.0)
    for attempt, bound in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (5, 1.0)]:
        delays = [policy.delay(attempt) for _ in range(400)]
        assert all(0 <= d <= bound for d in delays), attempt
        assert max(delays) > 0.8 * bound and min(delays) < 0.2 * bound, attempt  # jittered
    assert all(policy.delay(0, retry_after=3.0) == 3.0 for _ in range(50))  # a floor

    waits: list[float] = []
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise AdapterError("busy", retriable=True)
        return "ok"

    assert call_with_retries(flaky, RetryPolicy(4, 0.1, 10.0), sleep=waits.append) == "ok"
    assert len(waits) == 3 and all(0 <= w <= 0.1 * 2 ** i for i, w in enumerate(waits))
    with pytest.raises(AdapterError, match="refused"):
        call_with_retries(lambda: (_ for _ in ()).throw(AdapterError("refused")),
                          RetryPolicy(4, 0.1, 10.0), sleep=waits.append)
    assert len(waits) == 3  # an error that is not retriable is not retried


# README, In Airflow: "one silent for 2 minutes (a killed worker, out of memory) is marked
# `Failed` with the reason by the next job or scan of its version".
def test_a_job_silent_for_two_minutes_is_marked_failed_and_one_silent_for_less_is_not(
        store, tmp_path):
    colours = {"a": (200, 0, 0), "b": (0, 200, 0)}
    ds = _colour_version(store, tmp_path / "imgs", colours)
    silent = store.create_job(ds, "v1", "SemanticIndex", job_mode="Increment")
    store.start_job(silent.job_id)

    def last_beat(seconds_ago: float) -> None:
        store.execute("UPDATE jobs SET heartbeat_time = ? WHERE job_id = ?",
                      (now_ms() - int(seconds_ago * 1000), silent.job_id))

    last_beat(90)  # a long model call, but well under two minutes
    build_file_metas(store, ds, "v1")
    store.create_prompt("pixels", LOCAL_TAG_DEFINITION.tags)
    run_tagging_job(store, ds, "v1", tagger=LocalPixelTagger(), prompt="pixels")
    assert store.get_job(silent.job_id).status == "Running"

    last_beat(150)
    tagged = run_tagging_job(store, ds, "v1", tagger=LocalPixelTagger(), prompt="pixels",
                             mode="Full")  # the next job of the version notices
    assert tagged.status == "Succeeded"
    job = store.get_job(silent.job_id)
    assert job.status == "Failed" and job.result["error"].startswith("worker lost")
    assert f"resume_job_id={silent.job_id}" in job.result["error"]


# README, outside Airflow: "`oss://bucket/prefix` dataset URIs with `OSS_ENDPOINT`,
# `OSS_ACCESS_KEY_ID`, `OSS_ACCESS_KEY_SECRET` (optional `OSS_SESSION_TOKEN`, `OSS_REGION`)".
def test_oss_datasets_take_their_credentials_from_the_oss_environment_variables(
        store, fake_oss, monkeypatch):
    fake_oss.keys["STS.tmp"] = "tmp-secret"
    fake_oss.tokens["STS.tmp"] = "sts-token"
    fake_oss.put("bkt", "data/a/one.png", image_bytes("png", colour=(1, 2, 3)))
    fake_oss.put("bkt", "data/b/two.jpg", image_bytes("jpg"))
    ds = store.create_dataset("from-env", "oss://bkt/data/")
    store.create_version(ds.dataset_id)
    monkeypatch.setenv("OSS_ENDPOINT", fake_oss.endpoint)
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "STS.tmp")
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "tmp-secret")
    monkeypatch.setenv("OSS_SESSION_TOKEN", "sts-token")
    monkeypatch.setenv("OSS_REGION", "cn-hangzhou")
    result = build_file_metas(store, ds.dataset_id, "v1")  # no oss_config given
    assert (result.new, result.failed) == (2, 0)
    assert fake_oss.signed_with and set(fake_oss.signed_with) == {"v4"}  # the region: V4

    monkeypatch.setenv("OSS_SESSION_TOKEN", "another-token")
    with pytest.raises(AdapterError, match="InvalidSecurityToken"):
        build_file_metas(store, ds.dataset_id, "v1")


class _RangeRecordingOss(OssStorage):
    """The real OSS storage, recording the byte ranges it reads and what came back."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[str, tuple[int, int] | None, int]] = []

    def read(self, key, byte_range=None):
        data = super().read(key, byte_range)
        self.reads.append((key, byte_range, len(data)))
        return data


# README, FileMetaBuild: "On OSS only the first 64 KiB and last 1 KiB are read."
def test_on_oss_only_the_first_64_kib_and_the_last_1_kib_are_read(store, fake_oss):
    jpg = image_bytes("jpg", (50, 40))
    jpg = jpg[:-2] + os.urandom(300_000) + jpg[-2:]  # 300 KB between the header and the end
    noise = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG")  # noise does not compress: about 270 KB
    png = buf.getvalue()
    fake_oss.put("bkt", "data/big.jpg", jpg)
    fake_oss.put("bkt", "data/big.png", png)
    ds = store.create_dataset("ranges", "oss://bkt/data/")
    store.create_version(ds.dataset_id)
    storage = _RangeRecordingOss("oss://bkt/data/", OssConfig(
        endpoint=fake_oss.endpoint, access_key_id="ak", access_key_secret="sk"))
    result = build_file_metas(store, ds.dataset_id, "v1", storage=storage)
    assert (result.new, result.failed) == (2, 0)
    meta = store.get_file_meta(file_meta_id(ds.dataset_id, "v1", "oss://bkt/data/big.jpg"))
    assert (meta.meta_attributes["ImageWidth"], meta.meta_attributes["ImageHeight"]) == (50, 40)
    assert len(png) > 200_000
    for key, size in (("big.jpg", len(jpg)), ("big.png", len(png))):
        reads = [(r, n) for k, r, n in storage.reads if k == key]
        assert reads and all(r is not None for r, _ in reads), reads  # never the whole file
        assert set(r for r, _ in reads) <= {(0, 64 * 1024 - 1), (size - 1024, size - 1)}
        assert sum(n for _, n in reads) <= 65 * 1024


# README, the library: "for row in ExportDataset(...):  # map-style: len, [i]" gives
# `row["image"], row["tags"], row["meta"]`.
def test_an_export_loads_as_rows_of_image_tags_and_meta(store, tmp_path):
    from mmdm.adapters.export import ExportDataset, export_file_metas

    root = tmp_path / "imgs"
    ds = _colour_version(store, root, {"red": (220, 20, 20), "blue": (30, 40, 220)})
    red = store.get_file_meta(file_meta_id(ds, "v1", (root / "red.png").as_uri()))
    store.update_user_tags(red.file_meta_id, user_add=["keeper"])
    result = export_file_metas(store, ds, "v1", query="FileName:'red'",
                               export_dir_uri=str(tmp_path / "out"))
    rows = ExportDataset(result.manifest_uri)
    assert len(rows) == 1 and len(list(rows)) == 1
    row = rows[0]
    assert row["uri"] == red.uri and row["tags"] == ["keeper"]
    assert row["image"].size == (96, 80) and row["image"].mode == "RGB"
    assert row["meta"]["FileName"] == "red.png" and row["meta"]["DataSize"] == red.data_size
    assert row["meta"]["MetaAttributes"]["ImageWidth"] == 96


# README, query engine: "On PostgreSQL the store's connection ... plans every statement for its
# own values (`plan_cache_mode = force_custom_plan`)".
def test_postgres_store_plans_every_statement_for_its_own_values(pg_dsn):
    store = open_store(pg_dsn)
    try:
        assert store.fetchone("SHOW plan_cache_mode") == ("force_custom_plan",)
    finally:
        store.close()


def test_a_new_postgresql_database_gets_pg_trgm_on_first_connection(pg_admin_dsn):
    """README: "The metadata schema is created and migrated forward by the package on first
    connection (PostgreSQL: `pg_trgm` is created if the role may)": substring matches then
    run on its trigram indexes."""
    from tests.conftest import throwaway_database

    with throwaway_database(pg_admin_dsn, "mmdm_trgm") as dsn:
        store = open_store(dsn)
        try:
            assert store.fetchone("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
            indexes = {r[0] for r in store.fetchall(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'file_metas' AND "
                "strpos(indexdef, 'gin_trgm_ops') > 0")}
            assert {"file_metas_name_trgm", "file_metas_description_trgm"} <= indexes
        finally:
            store.close()
