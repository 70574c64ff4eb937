"""Migrations on stores that hold data: v3 (folded empty descriptions, the SortBy order
indexes), v4 (the folders table behind ``FileDir:``), v5 (tag sets remember the definition
revision and the file content they came from), v6 (job heartbeats and owners), v7 (work
claims), v8 (service secrets) and v10 (description index state)."""

from __future__ import annotations

import time

from mmdm.adapters.metadata import FileMeta, MetadataStore, open_store
from mmdm.adapters.metadata.schema import SCHEMA_VERSION
from mmdm.query import compile_sql, parse


def _undo_v10(store: MetadataStore) -> None:
    """Take a store back to how v9 left it (no description index state)."""
    store.execute("DROP TABLE file_index_sets")
    store.execute("UPDATE schema_version SET version = 9")


def _undo_v9(store: MetadataStore) -> None:
    """Take a store back to how v8 left it (no job configs)."""
    _undo_v10(store)
    store.execute("DROP TABLE dataset_job_configs")
    store.execute("UPDATE schema_version SET version = 8")


def _undo_v8(store: MetadataStore) -> None:
    """Take a store back to how v7 left it (no service secrets)."""
    _undo_v9(store)
    store.execute("DROP TABLE service_secrets")
    store.execute("UPDATE schema_version SET version = 7")


def _undo_v7(store: MetadataStore) -> None:
    """Take a store back to how v6 left it (no work claims)."""
    _undo_v8(store)
    store.execute("DROP TABLE work_claims")
    store.execute("UPDATE schema_version SET version = 6")


def _undo_v6(store: MetadataStore) -> None:
    """Take a store back to how v5 left it (jobs without heartbeat and owner)."""
    _undo_v7(store)
    store.execute("DROP INDEX jobs_owner")
    for column in ("heartbeat_time", "owner"):
        store.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
    store.execute("UPDATE schema_version SET version = 5")


def _undo_v5(store: MetadataStore) -> None:
    """Take a store back to how v4 left it (tag sets without revision and content)."""
    _undo_v6(store)
    for column in ("prompt_revision", "file_fingerprint"):
        store.execute(f"ALTER TABLE file_tag_sets DROP COLUMN {column}")
    store.execute("UPDATE schema_version SET version = 4")


def _undo_v4(store: MetadataStore) -> None:
    """Take a store back to how v3 left it (the folders table and its upkeep gone)."""
    _undo_v5(store)
    for trigger in ("file_dirs_insert", "file_dirs_update"):
        store.execute(f"DROP TRIGGER IF EXISTS {trigger}"
                      + (" ON file_metas" if store.dialect == "postgres" else ""))
    store.execute("DROP TABLE file_dirs")
    if store.dialect == "postgres":
        store.execute("DROP FUNCTION file_dirs_add")
        store.execute("DROP INDEX file_metas_dir_time")
        store.execute("CREATE INDEX file_metas_dir_trgm ON file_metas "
                      "USING GIN (file_dir_folded gin_trgm_ops)")
    store.execute("UPDATE schema_version SET version = 3")


def _reopen(store: MetadataStore) -> MetadataStore:
    return open_store(getattr(store, "dsn", None) or f"sqlite:///{store.path}")


def _ids(store: MetadataStore, dataset_id: str, text: str) -> set[str]:
    query = compile_sql(parse(text), store.dialect, dataset_id, "v1")
    return {r[1] for r in store.fetchall(query.sql, query.params)}


def test_v3_backfills_folded_empty_descriptions(store: MetadataStore) -> None:
    ds = store.create_dataset("v3", "oss://b/")
    store.create_version(ds.dataset_id)
    store.upsert_file_metas([FileMeta(f"m{i}", ds.dataset_id, "v1", f"oss://b/{i}.jpg",
                                      f"{i}.jpg", "", description=d)
                             for i, d in enumerate(["", "x", None])])
    # As a v2 store left it: '' was folded to NULL, and the v3 indexes did not exist.
    store.execute("UPDATE file_metas SET description_folded = NULL WHERE description = ''")
    _undo_v4(store)
    for name in ("file_metas_update_order", "file_metas_create_order"):
        store.execute(f"DROP INDEX IF EXISTS {name}")
    store.execute("UPDATE schema_version SET version = 2")
    reopened = _reopen(store)
    assert reopened.schema_version == SCHEMA_VERSION
    assert _ids(reopened, ds.dataset_id, "Description:''") == {"m0", "m1"}
    indexes = reopened.fetchall(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'file_metas'"
        if reopened.dialect == "postgres" else
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'file_metas'")
    expected = {"file_metas_update_order", "file_metas_create_order"}
    names = {n for (n,) in indexes}
    assert expected <= names if reopened.dialect == "postgres" else not expected & names
    reopened.close()


def test_v4_fills_the_folders_table_and_triggers_keep_it(store: MetadataStore) -> None:
    ds = store.create_dataset("v4", "oss://b/")
    store.create_version(ds.dataset_id)

    def meta(i: int, folder: str) -> FileMeta:
        return FileMeta(f"m{i}", ds.dataset_id, "v1", f"oss://b/{i}.jpg", f"{i}.jpg", folder)

    store.upsert_file_metas([meta(0, "Cars/Blue_Car/a"), meta(1, "cars/red"), meta(2, "")])
    _undo_v4(store)
    reopened = _reopen(store)  # v3 -> v4: the folders already written are backfilled
    assert _ids(reopened, ds.dataset_id, "FileDir:'blue_car'") == {"m0"}
    assert _ids(reopened, ds.dataset_id, "FileDir:''") == {"m0", "m1", "m2"}
    # New files and moved files bring their folders; a folder no file is in matches nothing.
    reopened.upsert_file_metas([meta(3, "x/BLUE_CAR"), meta(1, "blue_car/moved")])
    reopened.execute("UPDATE file_metas SET file_dir = 'elsewhere', "
                     "file_dir_folded = 'elsewhere' WHERE file_meta_id = 'm0'")
    assert _ids(reopened, ds.dataset_id, "FileDir:'blue_car'") == {"m1", "m3"}
    assert _ids(reopened, ds.dataset_id, "NOT FileDir:'blue_car'") == {"m0", "m2"}
    assert _ids(reopened, ds.dataset_id, "FileDir:'where'") == {"m0"}
    folders = {f for (f,) in reopened.fetchall(
        "SELECT file_dir_folded FROM file_dirs WHERE dataset_id = ?", (ds.dataset_id,))}
    assert folders == {"cars/blue_car/a", "cars/red", "", "x/blue_car", "blue_car/moved",
                       "elsewhere"}
    reopened.close()


def test_v5_remembers_which_revision_tagged_existing_files(store: MetadataStore) -> None:
    from mmdm.adapters.jobs import run_tagging_job
    from mmdm.adapters.models import LocalPixelTagger

    ds = store.create_dataset("v5", "oss://b/")
    store.create_version(ds.dataset_id)
    store.upsert_file_metas([FileMeta(f"m{i}", ds.dataset_id, "v1", f"oss://b/{i}.jpg",
                                      f"{i}.jpg", "", file_fingerprint=f"fp{i}")
                             for i in range(3)])
    prompt = store.create_prompt("p", {"red": "red things"})
    store.update_prompt(prompt.prompt_id, guide_prompt="revised")  # revision 2
    job = store.create_job(ds.dataset_id, "v1", "IntelligentTag",
                           job_spec={"promptId": prompt.prompt_id, "promptRevision": 2})
    metas = list(store.iter_file_metas(ds.dataset_id, "v1"))
    store.write_ai_tags(job.job_id, prompt.prompt_id, [(m, ["red"], None) for m in metas[:2]])
    _undo_v5(store)  # as v4 left it: tag sets without revision or content
    reopened = _reopen(store)
    assert reopened.schema_version == SCHEMA_VERSION
    rows = reopened.fetchall("SELECT prompt_revision, file_fingerprint FROM file_tag_sets "
                             "ORDER BY file_pk")
    assert rows == [(2, "fp0"), (2, "fp1")]
    # Increment with revision 2 has only the untagged file left (no model call: it fails to
    # read the file, which is not there, and is recorded).
    result = run_tagging_job(reopened, ds.dataset_id, "v1", tagger=LocalPixelTagger(),
                             prompt="p")
    assert result.total == 1
    reopened.close()


def test_v6_jobs_keep_working_and_gain_a_heartbeat(store: MetadataStore) -> None:
    ds = store.create_dataset("v6", "oss://b/")
    store.create_version(ds.dataset_id)
    old = store.create_job(ds.dataset_id, "v1", "IntelligentTag")
    store.start_job(old.job_id)
    time.sleep(0.01)  # started before the cutoff below
    _undo_v6(store)
    reopened = _reopen(store)
    assert reopened.schema_version == SCHEMA_VERSION
    # A job that was running when the store was upgraded has no beat: its start time counts.
    assert reopened.fail_lost_jobs(ds.dataset_id, "v1", lost_after_s=0) == [old.job_id]
    job = reopened.create_job(ds.dataset_id, "v1", "SemanticIndex", owner="airflow:d/r/t/-1")
    assert reopened.owned_job("airflow:d/r/t/-1", "SemanticIndex").job_id == job.job_id
    assert reopened.owned_job("airflow:d/r/t/-1", "IntelligentTag") is None
    reopened.close()


def test_v7_adds_work_claims_that_jobs_release(store: MetadataStore) -> None:
    ds = store.create_dataset("v7", "oss://b/")
    store.create_version(ds.dataset_id)
    store.upsert_file_metas([FileMeta(f"m{i}", ds.dataset_id, "v1", f"oss://b/{i}.jpg",
                                      f"{i}.jpg", "") for i in range(3)])
    _undo_v7(store)
    reopened = _reopen(store)
    assert reopened.schema_version == SCHEMA_VERSION
    job = reopened.create_job(ds.dataset_id, "v1", "SemanticIndex", job_mode="Increment")
    reopened.start_job(job.job_id)
    if reopened.shares_work:
        metas, last = reopened.claim_pending_files(
            ds.dataset_id, "v1", job_id=job.job_id, target="index", mode="Increment",
            claim="index:x", after_pk=0, limit=2, lost_after_s=60)
        assert [m.file_meta_id for m in metas] == ["m0", "m1"] and last == metas[-1].pk
    else:  # SQLite never claims; the table is there all the same
        reopened.execute("INSERT INTO work_claims VALUES ('index:x', 1, ?)", (job.job_id,))
    reopened.finish_job(job.job_id, "Succeeded")
    assert reopened.fetchone("SELECT COUNT(*) FROM work_claims")[0] == 0
    reopened.close()


def test_v8_keeps_one_secret_every_connection_shares(store: MetadataStore) -> None:
    _undo_v8(store)
    reopened = _reopen(store)
    assert reopened.schema_version == SCHEMA_VERSION
    key = reopened.secret("next-token")
    assert len(key) == 32 and reopened.secret("next-token") == key
    again = _reopen(reopened)
    assert again.secret("next-token") == key and again.secret("other") != key


def test_v9_adds_job_configs_that_deletes_take_along(store: MetadataStore) -> None:
    ds = store.create_dataset("configs", "file:///data")
    store.create_version(ds.dataset_id)
    _undo_v9(store)
    reopened = _reopen(store)
    assert reopened.schema_version == SCHEMA_VERSION
    reopened.create_job_config(ds.dataset_id, "MultimodalSemanticIndex",
                               {"databaseTableName": "t"}, "v1")
    assert reopened.job_defaults(ds.dataset_id, "v1", "SemanticIndex") == {
        "databaseTableName": "t"}
    reopened.delete_version(ds.dataset_id, "v1")
    assert reopened.list_job_configs(ds.dataset_id) == []
    reopened.close()


def test_v10_adds_description_index_state_that_deletes_take_along(
        store: MetadataStore) -> None:
    ds = store.create_dataset("described", "file:///data")
    store.create_version(ds.dataset_id)
    store.upsert_file_metas([FileMeta("m0", ds.dataset_id, "v1", "file:///data/0.jpg", "0.jpg",
                                      "", description="a red car")])
    _undo_v10(store)
    reopened = _reopen(store)
    assert reopened.schema_version == SCHEMA_VERSION
    [meta] = reopened.iter_file_metas(ds.dataset_id, "v1")
    job = reopened.create_job(ds.dataset_id, "v1", "SemanticIndex")
    reopened.mark_described_indexed(job.job_id, "set:description", [meta])
    assert reopened.fetchall("SELECT file_pk, content FROM file_index_sets") == [
        (meta.pk, "a red car")]
    reopened.finish_job(job.job_id, "Succeeded")
    reopened.delete_version(ds.dataset_id, "v1")
    assert reopened.fetchall("SELECT * FROM file_index_sets") == []
    reopened.close()
