"""Every DAG in dags/ runs end to end under dag.test() on embedded defaults."""

from __future__ import annotations

from adapters.samples import generate_samples


def test_pipeline_builds_file_metas(airflow_db, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_plugin.hooks.metadata import MetadataStoreHook

    store = MetadataStoreHook().get_store()
    generate_samples(tmp_path / "imgs", per_scene=2)
    ds = store.create_dataset("dag-test", (tmp_path / "imgs").as_uri())
    store.create_version(ds.dataset_id)
    bag = DagBag(dag_folder="dags")
    assert bag.import_errors == {}
    dag = bag.get_dag("mmdm_dataset_pipeline")
    run = dag.test(run_conf={"dataset": "dag-test", "version": "v1"})
    assert run.state == "success"
    assert store.count_file_metas(ds.dataset_id, "v1") == 10
