"""Promises README.md makes about mmdm in Airflow that no other test pinned down: each test is
named after the promise it protects and fails when that promise breaks.

Real parts only: Airflow's own DagBag, dag.test() and metadata database, the operators, the
workspace's embedded PostgreSQL or an SQLite store, the offline local model, and the fake OSS
and DashScope servers.
"""

from __future__ import annotations

import json
import uuid

import pytest

from mmdm.adapters.models import LOCAL_TAG_DEFINITION
from mmdm.adapters.samples import generate_samples
from tests.adapters.imagefiles import image_bytes
from tests.fakes.fake_dashscope import FakeDashScope


def _conn(monkeypatch, conn_id, **fields):
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


@pytest.fixture
def workspace_store(airflow_db):
    """The store the operators open without a connection: the workspace's embedded one."""
    from mmdm.airflow_plugin.hooks.metadata import MetadataStoreHook

    store = MetadataStoreHook().get_store()
    if not any(p.name == "pixel-statistics" for p in store.list_prompts()):  # shared store
        store.create_prompt("pixel-statistics", LOCAL_TAG_DEFINITION.tags,
                            guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    return store


def _dataset(store, root, name=None):
    ds = store.create_dataset(name or f"promises-{uuid.uuid4().hex[:8]}", root.as_uri())
    store.create_version(ds.dataset_id)
    return ds


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()  # the dags/ folder, as conftest configures it
    assert bag.import_errors == {}
    return bag


# README: "`mmdm_training`, which is scheduled on the export's Asset"; mmdm_dataset_pipeline.py:
# "The export's Asset triggers `mmdm_training`".
def test_the_export_asset_queues_a_training_run(dagbag, workspace_store, tmp_path):
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(AssetDagRunQueue).filter_by(target_dag_id="mmdm_training").delete()
    generate_samples(tmp_path / "imgs", per_scene=3)  # 15 images and a corrupt one
    ds = _dataset(workspace_store, tmp_path / "imgs")
    conf = {"dataset": ds.name, "version": "v1", "mode": "Full", "query": "FileDir:'red'",
            "export_dir": str(tmp_path / "exports")}
    run = dagbag.get_dag("mmdm_dataset_pipeline").test(run_conf=conf)
    assert run.state == "success"

    export_outlet = dagbag.dags["mmdm_dataset_pipeline"].get_task("export").outlets[0]
    with create_session() as session:
        queued = session.query(AssetDagRunQueue, AssetModel).join(
            AssetModel, AssetModel.id == AssetDagRunQueue.asset_id).filter(
            AssetDagRunQueue.target_dag_id == "mmdm_training").all()
        assert [(a.name, a.uri) for _, a in queued] == [(export_outlet.name, export_outlet.uri)]


# README: "Example DAGs in `dags/`: the pipeline (manual, and an hourly `Increment` variant), the
# Asset-scheduled training DAG, and a sharded tagging/indexing DAG."
def test_the_example_dags_run_when_the_readme_says(dagbag):
    manual = dagbag.dags["mmdm_dataset_pipeline"]
    hourly = dagbag.dags["mmdm_dataset_pipeline_incremental"]
    sharded = dagbag.dags["mmdm_sharded_tagging"]
    assert manual.schedule is None and manual.params["mode"] == "Full"
    assert hourly.schedule == "@hourly" and hourly.params["mode"] == "Increment"
    assert sharded.schedule is None
    assert {t.task_id for t in sharded.tasks} >= {"smart_tag", "semantic_index"}
    outlet = manual.get_task("export").outlets[0]
    assert hourly.get_task("export").outlets == [outlet]
    assert dagbag.dags["mmdm_training"].schedule == [outlet]


# README: "A task fails ... when a `PartialFailed` job lost more than `max_failed_fraction` of its
# files (default 0.1: a few corrupt images do not stop a pipeline ...)".
def test_a_partial_failure_above_the_default_tenth_fails_the_task(workspace_store, tmp_path):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from mmdm.airflow_plugin.operators.build import FileMetaBuildOperator

    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(9):
        (root / f"{i}.png").write_bytes(image_bytes("png", colour=(i, 0, 0)))
    (root / "broken-1.jpg").write_bytes(b"not an image")
    ds = _dataset(workspace_store, root)
    out = FileMetaBuildOperator(task_id="one_in_ten", dataset=ds.name).execute({})
    assert (out["new"], out["failed"]) == (9, 1)  # exactly a tenth: passes

    (root / "broken-2.jpg").write_bytes(b"not an image either")  # 2 of 11: more than a tenth
    with pytest.raises(AirflowException, match=r"ended PartialFailed: 2 of 11 files failed "
                                               r"\(more than max_failed_fraction=0.1\)") as info:
        FileMetaBuildOperator(task_id="two_in_eleven", dataset=ds.name).execute({})
    assert not isinstance(info.value, AirflowFailException)  # Airflow's retries apply


# README: "Query and configuration errors fail a task for good".
def test_query_and_configuration_errors_fail_a_task_for_good(workspace_store, tmp_path,
                                                             monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from mmdm.airflow_plugin.operators.export import ExportOperator, SearchOperator
    from mmdm.airflow_plugin.operators.indexing import SemanticIndexOperator
    from mmdm.airflow_plugin.operators.tagging import SmartTagOperator

    generate_samples(tmp_path / "imgs", per_scene=1)
    ds = _dataset(workspace_store, tmp_path / "imgs")
    with pytest.raises(AirflowFailException, match=r"(?s)FileDir >= 3.*\^"):  # with its caret
        ExportOperator(task_id="export", dataset=ds.name, query="FileDir >= 3",
                       export_dir=str(tmp_path / "out")).execute({"outlet_events": {}})
    with pytest.raises(AirflowFailException, match="unknown-attribute|FileNam"):
        SearchOperator(task_id="search", dataset=ds.name, query="FileNam:'x'").execute({})
    with pytest.raises(AirflowFailException, match="no-such-definition"):
        SmartTagOperator(task_id="tag", dataset=ds.name, prompt="no-such-definition"
                         ).execute({})
    _conn(monkeypatch, "keyless", conn_type="mmdm_dashscope", host="http://127.0.0.1:1")
    with pytest.raises(AirflowFailException, match="(?i)key"):
        SemanticIndexOperator(task_id="index", dataset=ds.name, embedding_conn_id="keyless"
                              ).execute({})
    assert not (tmp_path / "out").exists()


# README: "timeouts, throttling and 5xx errors are retried inside the job with backoff and then
# left to Airflow's `retries`" (here: the retriable refusal of a second job on SQLite).
def test_retriable_errors_are_left_to_airflows_retries(airflow_db, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from mmdm.adapters.errors import AdapterError
    from mmdm.adapters.metadata import open_store
    from mmdm.adapters.scan import build_file_metas
    from mmdm.airflow_plugin.operators.tagging import SmartTagOperator

    db = tmp_path / "meta.db"
    _conn(monkeypatch, "lite_meta", conn_type="mmdm_metadata", host=str(db))
    store = open_store(f"sqlite:///{db}")
    generate_samples(tmp_path / "imgs", per_scene=1)
    ds = _dataset(store, tmp_path / "imgs", name="busy")
    build_file_metas(store, ds.dataset_id, "v1")
    store.create_prompt("pixels", LOCAL_TAG_DEFINITION.tags)
    busy = store.create_job(ds.dataset_id, "v1", "IntelligentTag")
    store.start_job(busy.job_id)  # running and beating: a second job is refused, for now
    tag = SmartTagOperator(task_id="tag", dataset="busy", prompt="pixels",
                           metadata_conn_id="lite_meta")
    with pytest.raises(AdapterError, match=f"job {busy.job_id} is running") as info:
        tag.execute({})
    assert info.value.retriable and not isinstance(info.value, AirflowFailException)
    store.finish_job(busy.job_id, "Succeeded")
    assert tag.execute({})["CompletedFileCount"] == 5  # the retry, once the other job is done
    store.close()


# README: object storage "`mmdm_oss_default` ... embedded default: `OSS_*` environment
# variables".
def test_without_an_oss_connection_operators_read_the_oss_environment_variables(
        workspace_store, fake_oss, monkeypatch):
    from mmdm.airflow_plugin.operators.build import FileMetaBuildOperator

    fake_oss.keys = {"env-ak": "env-secret"}
    fake_oss.put("bkt", "cars/a.png", image_bytes("png"))
    fake_oss.put("bkt", "cars/b.webp", image_bytes("webp"))
    ds = workspace_store.create_dataset(f"oss-env-{uuid.uuid4().hex[:8]}", "oss://bkt/cars/")
    workspace_store.create_version(ds.dataset_id)
    monkeypatch.delenv("AIRFLOW_CONN_MMDM_OSS_DEFAULT", raising=False)
    monkeypatch.setenv("OSS_ENDPOINT", fake_oss.endpoint)
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "env-ak")
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "env-secret")
    out = FileMetaBuildOperator(task_id="build", dataset=ds.name).execute({})
    assert (out["new"], out["failed"]) == (2, 0)


# README: "Secrets stay in the connections: ... no job record, XCom value, export or error message
# carries them (tested)" -- here on the failure path, against a service that echoes the key.
def test_secrets_stay_out_of_job_records_and_task_errors_when_a_service_echoes_them(
        workspace_store, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowException

    from mmdm.adapters.scan import build_file_metas
    from mmdm.airflow_plugin.operators.tagging import SmartTagOperator

    secret = "sk-rotated-away-but-still-secret-4711"
    fake = FakeDashScope(api_key="sk-the-current-key", echo_key_in_errors=True).start()
    try:
        _conn(monkeypatch, "stale_key", conn_type="mmdm_dashscope", password=secret,
              host=fake.base_url)
        generate_samples(tmp_path / "imgs", per_scene=1)
        ds = _dataset(workspace_store, tmp_path / "imgs")
        build_file_metas(workspace_store, ds.dataset_id, "v1")
        with pytest.raises(AirflowException) as info:
            SmartTagOperator(task_id="tag", dataset=ds.name, prompt="pixel-statistics",
                             dashscope_conn_id="stale_key", max_concurrency=1).execute({})
    finally:
        fake.stop()
    assert any(secret in json.dumps(r.headers) for r in fake.requests)  # it was sent...
    assert "InvalidApiKey" in str(info.value)
    job = workspace_store.list_jobs(ds.dataset_id, "v1", "IntelligentTag")[0]
    assert job.status == "Failed" and job.failed_file_count == 5
    written = [str(info.value), repr(info.value),
               json.dumps(job.to_pai(workspace_store.job_logs(job.job_id))),
               json.dumps(job.result), json.dumps(job.job_spec),
               json.dumps(workspace_store.job_file_failures(job.job_id))]
    for text in written:
        assert secret not in text  # ...and never written back


# README: "`SearchOperator` | a search's total and first hits", "return small JSON".
def test_search_operator_returns_the_total_and_the_first_hits(workspace_store, tmp_path):
    from mmdm.adapters.scan import build_file_metas
    from mmdm.airflow_plugin.operators.export import SearchOperator

    generate_samples(tmp_path / "imgs", per_scene=4)
    ds = _dataset(workspace_store, tmp_path / "imgs")
    build_file_metas(workspace_store, ds.dataset_id, "v1")
    red = sorted(m.file_meta_id for m in workspace_store.iter_file_metas(ds.dataset_id, "v1")
                 if m.file_dir.startswith("red"))
    out = SearchOperator(task_id="search", dataset=ds.name, query="FileDir:'red'",
                         max_results=3).execute({})
    assert out["TotalCount"] == len(red) == 4
    hits = out["DatasetFileMetas"]
    assert len(hits) == 3 and {h["DatasetFileMetaId"] for h in hits} <= set(red)
    assert all(h["Uri"].startswith("file://") and h["Score"] is None for h in hits)
    assert "TAG plan" in out["Plan"] and len(json.dumps(out)) < 2000


# README: "Task logs show progress (done/total, rate, ETA)."
def test_task_logs_show_progress_as_done_of_total_rate_and_eta(workspace_store, tmp_path, capfd):
    import re

    from mmdm.adapters.scan import build_file_metas
    from mmdm.airflow_plugin.operators.tagging import SmartTagOperator

    generate_samples(tmp_path / "imgs", per_scene=2)
    ds = _dataset(workspace_store, tmp_path / "imgs")
    build_file_metas(workspace_store, ds.dataset_id, "v1")
    capfd.readouterr()
    out = SmartTagOperator(task_id="tag_progress", dataset=ds.name,
                           prompt="pixel-statistics").execute({})
    assert out["CompletedFileCount"] == 10
    logged = capfd.readouterr().out
    assert re.search(r"tag_progress: 10/10 files \(0 failed\), \d+ files/s, ETA 0s", logged), logged
