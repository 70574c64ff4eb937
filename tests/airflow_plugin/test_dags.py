"""Every DAG in dags/ runs end to end under dag.test() on embedded defaults."""

from __future__ import annotations

import uuid

import pytest

from mmdm.adapters.models import LOCAL_TAG_DEFINITION
from mmdm.adapters.samples import generate_samples


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()  # the dags/ folder, as conftest configures it
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="module")
def dag_store(airflow_db):
    """The store the DAGs' hooks open (the workspace's), with the local model's definition."""
    from mmdm.airflow_plugin.hooks.metadata import MetadataStoreHook

    store = MetadataStoreHook().get_store()
    store.create_prompt("pixel-statistics", LOCAL_TAG_DEFINITION.tags,
                        guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    return store


@pytest.fixture
def sample_dataset(dag_store, tmp_path):
    """A new dataset per test (15 images and a corrupt .jpg): no test needs another's run."""
    root = tmp_path / "imgs"
    generate_samples(root, per_scene=3)
    ds = dag_store.create_dataset(f"dag-samples-{uuid.uuid4().hex[:8]}", root.as_uri())
    dag_store.create_version(ds.dataset_id)
    return dag_store, ds


def _xcom(run, task_id, map_index=-1):
    from airflow.models import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(
            dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, map_index=map_index).one()
        assert ti.state == "success", (task_id, ti.state)
        row = session.query(XComModel).filter_by(
            dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, map_index=map_index,
            key="return_value").one()
        return XComModel.deserialize_value(row)


def test_every_dag_file_imports(dagbag):
    assert set(dagbag.dag_ids) == {"mmdm_dataset_pipeline", "mmdm_dataset_pipeline_incremental",
                                   "mmdm_training", "mmdm_sharded_tagging", "mmdm_dataset_job"}


def test_the_job_dag_runs_a_recorded_job(dagbag, sample_dataset, tmp_path):
    """What the API inside Airflow does with CreateDatasetJob: record a Pending job, then a
    run of mmdm_dataset_job with its id. A job stopped before its run starts is skipped."""
    store, ds = sample_dataset
    dag = dagbag.get_dag("mmdm_dataset_job")
    assert not dag.is_paused_upon_creation  # a job request runs without an unpause
    build = store.create_job(ds.dataset_id, "v1", "FileMetaBuild")
    run = dag.test(run_conf={"DatasetJobId": build.job_id})
    assert run.state == "success"
    assert _xcom(run, "run_job")["new"] == 15
    assert store.get_job(build.job_id).status == "PartialFailed"  # the corrupt .jpg
    export = store.create_job(ds.dataset_id, "v1", "FileMetaExport", job_spec={
        "query": "FileDir:'red'", "exportDirUri": tmp_path.as_uri() + "/"})
    assert dag.test(run_conf={"DatasetJobId": export.job_id}).state == "success"
    assert store.get_job(export.job_id).result["RowCount"] == 3

    stopped = store.create_job(ds.dataset_id, "v1", "FileMetaBuild")
    store.request_job_stop(stopped.job_id)
    run = dag.test(run_conf={"DatasetJobId": stopped.job_id})
    assert _task_state(run, "run_job") == "skipped"
    assert store.get_job(stopped.job_id).status == "ManuallyStop"


def _task_state(run, task_id):
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(TaskInstance).filter_by(
            dag_id=run.dag_id, run_id=run.run_id, task_id=task_id).one().state


def test_pipeline_then_training_on_the_export_asset(dagbag, sample_dataset, tmp_path):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    store, ds = sample_dataset
    conf = {"dataset": ds.name, "version": "v1", "mode": "Full",
            "query": "FileDir:'blue' OR FileDir:'red'", "export_dir": str(tmp_path)}
    run = dagbag.get_dag("mmdm_dataset_pipeline").test(run_conf=conf)
    assert run.state == "success"
    built = _xcom(run, "build_file_metas")
    assert (built["new"], built["failed"]) == (15, 1)  # the samples' corrupt .jpg
    assert _xcom(run, "smart_tag")["CompletedFileCount"] == 15
    assert _xcom(run, "semantic_index")["CompletedFileCount"] == 15
    export = _xcom(run, "export")
    assert export["RowCount"] == 6 and export["ManifestUri"].startswith(tmp_path.as_uri())
    with create_session() as session:
        event = session.query(AssetEvent).order_by(AssetEvent.id.desc()).first()
        assert event.extra["ManifestUri"] == export["ManifestUri"]

    training = dagbag.get_dag("mmdm_training").test()
    assert training.state == "success"
    got = _xcom(training, "load_export")
    assert (got["Rows"], got["ExpectedRows"], got["ManifestUri"]) == (
        6, 6, export["ManifestUri"])


def test_incremental_pipeline_makes_no_model_calls_when_nothing_changed(
        dagbag, sample_dataset, tmp_path):
    _, ds = sample_dataset
    conf = {"dataset": ds.name, "version": "v1", "export_dir": str(tmp_path)}
    first = dagbag.get_dag("mmdm_dataset_pipeline").test(run_conf={**conf, "mode": "Full"})
    assert first.state == "success" and _xcom(first, "smart_tag")["CompletedFileCount"] == 15
    dag = dagbag.get_dag("mmdm_dataset_pipeline_incremental")
    run = dag.test(run_conf=conf)
    assert run.state == "success"
    assert _xcom(run, "build_file_metas")["unchanged"] == 15
    assert _xcom(run, "smart_tag")["TotalFileCount"] == 0
    assert _xcom(run, "semantic_index")["TotalFileCount"] == 0
    assert _xcom(run, "export")["RowCount"] == 15


def test_sharded_run_maps_one_task_per_shard(dagbag, sample_dataset):
    from mmdm.adapters.scan import build_file_metas

    store, ds = sample_dataset
    build_file_metas(store, ds.dataset_id, "v1")
    run = dagbag.get_dag("mmdm_sharded_tagging").test(
        run_conf={"dataset": ds.name, "version": "v1", "shards": 3})
    assert run.state == "success"
    tagged = [_xcom(run, "smart_tag", i)["CompletedFileCount"] for i in range(3)]
    indexed = [_xcom(run, "semantic_index", i)["CompletedFileCount"] for i in range(3)]
    assert sum(tagged) == sum(indexed) == 15 and all(n > 0 for n in tagged)
    keys = store.fetchall(
        "SELECT jf.file_key FROM job_files jf JOIN jobs j ON j.job_id = jf.job_id "
        "WHERE j.job_action = 'IntelligentTag' AND j.dataset_id = ?", (ds.dataset_id,))
    assert len(keys) == len(set(keys)) == 15


def _states(run):
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.state for ti in session.query(TaskInstance).filter_by(
            dag_id=run.dag_id, run_id=run.run_id)}


def test_a_failed_job_fails_its_task_and_stops_the_run(dagbag, sample_dataset, fake_dashscope,
                                                        monkeypatch, tmp_path):
    """A wrong model key: every file fails, the job ends Failed, and so does the task; the
    export never runs on an untagged version."""
    import json

    monkeypatch.setenv("AIRFLOW_CONN_MMDM_DASHSCOPE_DEFAULT", json.dumps({
        "conn_type": "mmdm_dashscope", "host": fake_dashscope.base_url,
        "password": "sk-wrong-key"}))
    store, ds = sample_dataset
    conf = {"dataset": ds.name, "version": "v1", "mode": "Full", "export_dir": str(tmp_path)}
    run = dagbag.get_dag("mmdm_dataset_pipeline").test(run_conf=conf)
    assert run.state == "failed"
    states = _states(run)
    assert states["build_file_metas"] == "success"  # 1 corrupt file of 16: within 10 %
    assert states["smart_tag"] == "failed" and states["export"] == "upstream_failed"
    job = store.list_jobs(ds.dataset_id, "v1", "IntelligentTag")[0]
    assert (job.status, job.completed_file_count, job.failed_file_count) == ("Failed", 0, 15)
    assert all("InvalidApiKey" in reason or "401" in reason
               for _, reason in store.job_file_failures(job.job_id))
