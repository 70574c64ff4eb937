"""Metadata-store contract: the same tests, the same results on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from mmdm.adapters.errors import AlreadyExistsError, NotFoundError
from mmdm.adapters.ids import file_meta_id
from mmdm.adapters.metadata import SCAN_COLUMNS, FileMeta, MetadataStore, effective_tags, open_store
from mmdm.adapters.metadata.schema import SCHEMA_VERSION


def _meta(ds: str, name: str, **kw) -> FileMeta:
    uri = f"oss://bucket/data/{name}"
    return FileMeta(file_meta_id(ds, "v1", uri), ds, "v1", uri, name, "data", **kw)


@pytest.fixture
def dataset(store: MetadataStore):
    ds = store.create_dataset("cars", "oss://bucket/data/")
    store.create_version(ds.dataset_id)
    return ds


def test_schema_is_migrated_to_the_current_version(store):
    assert store.schema_version == SCHEMA_VERSION


def test_dataset_ids_versions_and_lookup_by_name(store):
    ds = store.create_dataset("cars", "oss://bucket/cars/", description="front camera")
    assert ds.dataset_id.startswith("d-") and len(ds.dataset_id) == 20
    assert store.get_dataset("cars") == ds == store.get_dataset(ds.dataset_id)
    v1 = store.create_version(ds.dataset_id)
    v2 = store.create_version(ds.dataset_id, uri="oss://bucket/cars-2/")
    logical = store.create_version(ds.dataset_id, source_type="LOGICAL")
    assert [v.version_name for v in store.list_versions(ds.dataset_id)] == ["v1", "v2", "v3"]
    assert v1.uri == "oss://bucket/cars/" and v2.uri == "oss://bucket/cars-2/"
    assert logical.uri is None and logical.source_type == "LOGICAL"
    with pytest.raises(NotFoundError):
        store.get_version(ds.dataset_id, "v9")
    with pytest.raises(NotFoundError):
        store.get_dataset("trucks")


def test_dataset_names_are_unique(store):
    store.create_dataset("cars", "oss://bucket/a/")
    with pytest.raises(AlreadyExistsError, match="a dataset named 'cars' exists already"):
        store.create_dataset("cars", "oss://bucket/b/")
    assert store.get_dataset("cars").uri == "oss://bucket/a/"  # the first one is untouched


def test_tag_definition_names_are_unique(store):
    store.create_prompt("colours", {"red": "a red thing"})
    with pytest.raises(AlreadyExistsError, match="a tag definition named 'colours'"):
        store.create_prompt("colours", {"blue": "a blue thing"})
    assert store.get_prompt("colours").tag_definitions == {"red": "a red thing"}


def test_file_meta_round_trip_keeps_every_field(store, dataset):
    meta = _meta(
        dataset.dataset_id, "a.jpg", data_size=1234, file_fingerprint="ETAG1",
        file_create_time=1_700_000_000_000, file_update_time=1_700_000_000_123,
        file_type="image", content_type="image/jpeg",
        meta_attributes={"ImageWidth": 800, "ImageHeight": 400, "ImageFormat": "JPEG"},
        comment="c", description="A blue car on a wet road",
        tags_ai=["car", "wet road"], tags_user=["Everett"], tags_user_delete_ai=["wet road"],
        tag_job_id="dsjob-1", tag_update_time=1_700_000_001_000,
        semantic_index_job_id="dsjob-2", semantic_index_update_time=1_700_000_002_000,
        sync_time=1_700_000_003_000,
    )
    store.upsert_file_metas([meta])
    got = store.get_file_meta(meta.file_meta_id)
    assert got.pk is not None
    assert got == FileMeta(**{**meta.__dict__, "pk": got.pk})
    assert got.tags_all == ["car", "Everett"]
    pai = got.to_pai()
    assert pai["FileUpdateTime"] == "2023-11-14T22:13:20.123Z"
    assert '"user-delete-ai-tags": ["wet road"]' in pai["Tags"]


@pytest.mark.parametrize("attributes", [
    {"ImageWidth": 800, "Caption": "Käfer, 東京", "Crop": {"y": 2, "x": [1.5, None, True]}},
    {"Serial": 2**70, "Offset": -2**65},  # past 64 bits: json writes what orjson refuses
    {},
])
def test_meta_attributes_keep_every_json_value(store, dataset, attributes):
    meta = _meta(dataset.dataset_id, "a.jpg", meta_attributes=attributes)
    store.upsert_file_metas([meta])
    assert store.get_file_meta(meta.file_meta_id).meta_attributes == attributes
    if store.dialect == "sqlite":  # stored as valid JSON text, queryable by SQLite's functions
        assert store.fetchone("SELECT json_valid(meta_attributes), typeof(meta_attributes) "
                              "FROM file_metas") == (1, "text")


def test_effective_tags_follow_pai_rule():
    assert effective_tags(["Lane line", "Water horse", "Sunny day"],
                          ["Everett", "Cloudy day"], ["Sunny day"]) == [
        "Lane line", "Water horse", "Everett", "Cloudy day"]
    # (ai ∪ user) − removed: a removed AI tag stays hidden even if also added by hand
    assert effective_tags(["rain"], ["rain", "mine"], ["rain"]) == ["mine"]


def test_upsert_with_scan_columns_never_touches_tags(store, dataset):
    ds = dataset.dataset_id
    store.upsert_file_metas([_meta(ds, "a.jpg", data_size=1, tags_ai=["car"], description="d")])
    store.upsert_file_metas([_meta(ds, "a.jpg", data_size=2)], update_columns=SCAN_COLUMNS)
    got = store.get_file_meta(file_meta_id(ds, "v1", "oss://bucket/data/a.jpg"))
    assert (got.data_size, got.tags_ai, got.description) == (2, ["car"], "d")
    store.upsert_file_metas([_meta(ds, "a.jpg", data_size=3, tags_ai=["bus"])])
    got = store.get_file_meta(got.file_meta_id)
    assert (got.data_size, got.tags_ai, got.tags_all) == (3, ["bus"], ["bus"])


def test_tag_side_table_follows_every_write_on_sqlite(tmp_path):
    store = open_store(str(tmp_path / "m.db"))  # the side table exists only on SQLite
    ds = store.create_dataset("cars", "oss://bucket/data/").dataset_id
    store.create_version(ds)
    store.upsert_file_metas([_meta(ds, "a.jpg", tags_ai=["car", "sky"], tags_user_delete_ai=["sky"])])
    rows = set(store.fetchall("SELECT grp, tag FROM file_tags"))
    assert rows == {("ai", "car"), ("ai", "sky"), ("user-delete-ai-tags", "sky"), ("all", "car")}
    store.upsert_file_metas([_meta(ds, "a.jpg", tags_ai=["bus"])])
    assert set(store.fetchall("SELECT grp, tag FROM file_tags")) == {("ai", "bus"), ("all", "bus")}


def test_iter_and_count_stream_in_key_order_by_status(store, dataset):
    ds = dataset.dataset_id
    metas = [_meta(ds, f"{i:03d}.jpg", status="DELETED" if i % 4 == 0 else "ACTIVE")
             for i in range(25)]
    store.upsert_file_metas(metas)
    active = list(store.iter_file_metas(ds, "v1", batch_size=4))
    assert [m.file_name for m in active] == [m.file_name for m in metas if m.status == "ACTIVE"]
    assert store.count_file_metas(ds, "v1") == 18
    assert store.count_file_metas(ds, "v1", status="DELETED") == 7
    assert store.count_file_metas(ds, "v1", status=None) == 25
    assert len(list(store.iter_file_metas(ds, "v1", status=None, batch_size=7))) == 25
    pks = [m.pk for m in active[:3]]
    assert [m.pk for m in store.get_file_metas_by_pk(pks[::-1])] == pks[::-1]


def test_scan_lookup_and_seen_set_mark_vanished_files(store, dataset):
    ds = dataset.dataset_id
    store.upsert_file_metas([_meta(ds, n, data_size=1, file_fingerprint="x", sync_time=1)
                             for n in "abc"])
    uris = [f"oss://bucket/data/{n}" for n in "ab"]
    known = store.scan_lookup(ds, "v1", [*uris, "oss://bucket/data/zzz"])
    assert set(known) == set(uris) and known[uris[0]][1:] == ("x", 1, None, "ACTIVE")
    with store.seen_files(ds, "v1") as seen:
        seen.add([known[uris[0]][0]])
        seen.add([known[uris[0]][0]])  # seeing a file twice is harmless
        # written during the scan (sync time after its start): not deleted though unseen
        store.upsert_file_metas([_meta(ds, "b", data_size=2, sync_time=seen.started + 1)])
        assert seen.mark_unseen_deleted() == 1
    assert store.count_file_metas(ds, "v1") == 2
    gone = store.get_file_meta(file_meta_id(ds, "v1", "oss://bucket/data/c"))
    assert gone.status == "DELETED" and gone.sync_time >= seen.started


def test_versions_are_isolated(store, dataset):
    ds = dataset.dataset_id
    store.create_version(ds)
    uri = "oss://bucket/data/a.jpg"
    store.upsert_file_metas([_meta(ds, "a.jpg")])
    store.upsert_file_metas([FileMeta(file_meta_id(ds, "v2", uri), ds, "v2", uri, "a.jpg", "")])
    assert store.count_file_metas(ds, "v1") == store.count_file_metas(ds, "v2") == 1
    with store.seen_files(ds, "v2") as seen:
        assert seen.mark_unseen_deleted() == 1
    assert store.count_file_metas(ds, "v1") == 1


def test_jobs_counters_logs_and_per_file_outcomes(store, dataset):
    job = store.create_job(dataset.dataset_id, "v1", "IntelligentTag", job_mode="Increment",
                           job_spec={"promptId": "pmt-1", "modelId": "qwen-vl-max"})
    assert job.job_id.startswith("dsjob-") and job.status == "Pending"
    store.start_job(job.job_id, total_file_count=3)
    store.append_job_log(job.job_id, "Job started")
    store.record_job_files(job.job_id, [("f1", "DONE", None), ("f2", "FAILED", "429")])
    store.record_job_files(job.job_id, [("f2", "FAILED", "timeout")])
    store.update_job_counts(job.job_id, completed=1, failed=1)
    store.finish_job(job.job_id, "PartialFailed", {"note": "x"})
    got = store.get_job(job.job_id)
    assert (got.status, got.total_file_count, got.completed_file_count, got.failed_file_count) == (
        "PartialFailed", 3, 1, 1)
    assert got.job_spec["modelId"] == "qwen-vl-max" and got.finish_time is not None
    assert store.job_file_failures(job.job_id) == [("f2", "timeout")]
    attempts = store.fetchone("SELECT attempts FROM job_files WHERE file_key = ?", ("f2",))
    assert attempts == (2,)
    logs = store.job_logs(job.job_id)
    assert len(logs) == 1 and logs[0].endswith("INFO: Job started")
    assert [j.job_id for j in store.list_jobs(dataset.dataset_id, job_action="IntelligentTag")] == [
        job.job_id]
    pai = got.to_pai(logs)
    assert pai["JobSpec"].startswith("{") and pai["Logs"] == logs
    with pytest.raises(ValueError):
        store.finish_job(job.job_id, "Running")


def test_lists_keep_one_order_for_rows_made_in_one_millisecond(store, frozen_clock):
    """By create time, then by id: PostgreSQL returns ties in any order, and each page of a
    list is a query of its own. A version's jobs do not tie: each is created after the last."""
    datasets = [store.create_dataset(f"d{i}", "oss://b/").dataset_id for i in range(5)]
    assert [d.dataset_id for d in store.list_datasets()] == sorted(datasets)
    jobs = [store.create_job(datasets[0], "v1", "IntelligentTag").job_id for _ in range(5)]
    assert [j.job_id for j in store.list_jobs(datasets[0])] == jobs[::-1]  # newest first
    times = [store.get_job(j).create_time for j in jobs]
    assert times == list(range(frozen_clock, frozen_clock + 5))
    # Other versions' jobs may share a millisecond with these: the id decides.
    others = [store.create_job(datasets[0], f"v{i}", "IntelligentTag").job_id
              for i in range(2, 6)]
    listed = [j.job_id for j in store.list_jobs(datasets[0])
              if j.create_time == frozen_clock]
    assert listed == sorted([jobs[0], *others], reverse=True)
    prompts = [store.create_prompt(f"p{i}", {"a": "b"}).prompt_id for i in range(5)]
    assert [p.prompt_id for p in store.list_prompts()] == sorted(prompts)


def test_prompts_keep_tag_definitions_and_revisions(store):
    p = store.create_prompt("driving", {"Crosswalk": "White stripes", "Tunnel": "Tunnels"},
                            guide_prompt="As an experienced driver…")
    assert p.prompt_id.startswith("pmt-")
    assert store.get_prompt("driving") == p
    p2 = store.update_prompt(p.prompt_id, tag_definitions={"Crosswalk": "Stripes"})
    assert (p2.revision, p2.tag_definitions, p2.guide_prompt) == (
        2, {"Crosswalk": "Stripes"}, "As an experienced driver…")
    assert [x.name for x in store.list_prompts()] == ["driving"]


def test_transactions_roll_back_together(store, dataset):
    ds = dataset.dataset_id
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.upsert_file_metas([_meta(ds, "a.jpg")])
            raise RuntimeError("boom")
    assert store.count_file_metas(ds, "v1") == 0


def test_values_are_bound_not_formatted(store, dataset):
    evil = "x'); DROP TABLE file_metas; --"
    store.upsert_file_metas([_meta(dataset.dataset_id, evil)])
    assert store.get_file_meta(file_meta_id(dataset.dataset_id, "v1",
                                            f"oss://bucket/data/{evil}")).file_name == evil
    with pytest.raises(NotFoundError):
        store.get_dataset(evil)


@pytest.mark.parametrize(("options", "expected"), [("", "64MB"), ("-c work_mem=256MB", "256MB")])
def test_postgres_store_raises_work_mem_but_never_lowers_it(pg_dsn, options, expected):
    from urllib.parse import quote

    dsn = pg_dsn + (f"?options={quote(options)}" if options else "")
    store = open_store(dsn)
    try:
        assert store.fetchone("SHOW work_mem") == (expected,)
    finally:
        store.close()


def _batch(ds: str, n: int, **kw) -> list[FileMeta]:
    names = ["plain.jpg", "tab\there.jpg", "new\nline.jpg", "back\\slash.jpg", "quote'\".jpg",
             "ünï cødé.jpg", "comma,{brace}.jpg"]
    return [_meta(ds, f"{i:03d}-{names[i % len(names)]}", data_size=i,
                  meta_attributes={"ImageWidth": i, "Note": names[i % len(names)]},
                  tags_ai=[f"t{i % 3}", "a,b"] if i % 2 else [], description=None if i % 4
                  else f"d {i}", **kw) for i in range(n)]


@pytest.mark.parametrize("n", [3, 150])  # PostgreSQL COPYs batches of 64 or more
@pytest.mark.parametrize("likely_new", [False, True])  # a first build's hint: it may be wrong
def test_a_batch_upsert_stores_what_row_by_row_upserts_store(store, dataset, n, likely_new):
    from mmdm.query import parse
    from mmdm.adapters.search import SearchService

    ds = dataset.dataset_id
    metas = _batch(ds, n)
    stale = _meta(ds, metas[0].file_name, data_size=-1)  # a file twice in a batch: last wins
    with store.transaction():  # two batches in one transaction, a file in both
        store.upsert_file_metas(metas[: n // 2], likely_new=likely_new)
        store.upsert_file_metas([stale, *metas[n // 2:], metas[0]], likely_new=likely_new)
    for meta in metas:
        got = store.get_file_meta(meta.file_meta_id)
        assert got == FileMeta(**{**meta.__dict__, "pk": got.pk}), meta.file_name
    assert store.count_file_metas(ds, "v1") == n

    rescanned = [_meta(ds, m.file_name, data_size=m.data_size + 1000) for m in metas]
    store.upsert_file_metas(rescanned, update_columns=SCAN_COLUMNS, likely_new=likely_new)
    for meta in metas:
        got = store.get_file_meta(meta.file_meta_id)
        assert (got.data_size, got.tags_ai, got.description) == (
            meta.data_size + 1000, meta.tags_ai, meta.description)
    page = SearchService(store).search(ds, "v1", parse("FileDir:'data' AND MaxResults=100"))
    assert page.total_count == n  # the folders the batch wrote are searchable

    with pytest.raises(RuntimeError):
        with store.transaction():
            store.upsert_file_metas(_batch(ds, n + 10)[n:] + _batch(ds, n))
            raise RuntimeError("boom")
    assert store.count_file_metas(ds, "v1") == n


def test_postgres_planner_statistics_are_refreshed_on_request(pg_dsn):
    """A table never analyzed reads as empty to the planner, which then walks a whole version
    for a batch of lookups; ``analyze_file_metas`` (after a large scan) gives it the rows."""
    store = open_store(pg_dsn)
    ds = store.create_dataset("stats", "oss://bkt/stats/").dataset_id
    store.create_version(ds)
    store.upsert_file_metas(_batch(ds, 150))

    def planned_rows() -> float:
        return store.fetchone("SELECT reltuples FROM pg_class WHERE oid = 'file_metas'::regclass")[0]

    assert planned_rows() < 0  # never analyzed: unknown
    store.analyze_file_metas()
    assert planned_rows() == 150
    store.close()
