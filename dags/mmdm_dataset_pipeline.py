"""mmdm dataset pipeline: build file metas for a dataset version (more steps follow)."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_plugin.operators.build import FileMetaBuildOperator

with DAG(
    dag_id="mmdm_dataset_pipeline",
    schedule=None,
    catchup=False,
    params={
        "dataset": Param("quickstart-samples", type="string", description="dataset id or name"),
        "version": Param("v1", type="string"),
    },
    tags=["mmdm"],
) as dag:
    build = FileMetaBuildOperator(
        task_id="build_file_metas",
        dataset="{{ params.dataset }}",
        version="{{ params.version }}",
    )
