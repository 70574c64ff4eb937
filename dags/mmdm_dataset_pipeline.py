"""The mmdm dataset pipeline: build file metas → smart tagging → semantic index → export.

Two DAGs from one definition: ``mmdm_dataset_pipeline`` (manual, Full or Increment from the
run's parameters) and ``mmdm_dataset_pipeline_incremental`` (hourly, Increment: only new,
changed or failed files cost model calls). Connections decide the backends: with none defined
this runs on the embedded defaults (PostgreSQL with pgvector, the offline local model); define
``mmdm_metadata_default`` (postgres), ``mmdm_dashscope_default``, ``mmdm_embedding_default``
(DashScope, EAS, OpenAI-compatible or CLIP) and ``mmdm_vectors_default`` (Milvus or
Elasticsearch) for production. The export's Asset triggers ``mmdm_training``.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from mmdm.airflow_plugin.assets import export_asset
from mmdm.airflow_plugin.operators.build import FileMetaBuildOperator
from mmdm.airflow_plugin.operators.export import ExportOperator
from mmdm.airflow_plugin.operators.indexing import SemanticIndexOperator
from mmdm.airflow_plugin.operators.tagging import SmartTagOperator

EXPORT = export_asset("dataset_pipeline")


def dataset_pipeline(dag_id: str, schedule: str | None, mode: str) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        catchup=False,
        tags=["mmdm"],
        doc_md=__doc__,
        params={
            "dataset": Param("quickstart-samples", type="string",
                             description="dataset id (d-…) or name"),
            "version": Param("v1", type="string"),
            "mode": Param(mode, enum=["Increment", "Full"]),
            "prompt": Param("pixel-statistics", type="string",
                            description="tag definition id (pmt-…) or name"),
            "query": Param("", type="string", description="QueryExpression DSL of the export "
                                                          "(empty: every file)"),
            "export_dir": Param("", type="string", description="local folder or oss:// prefix "
                                                               "(empty: the mmdm workspace)"),
        },
    ) as dag:
        common = {"dataset": "{{ params.dataset }}", "version": "{{ params.version }}"}
        build = FileMetaBuildOperator(task_id="build_file_metas", **common)
        tag = SmartTagOperator(task_id="smart_tag", prompt="{{ params.prompt }}",
                               mode="{{ params.mode }}", **common)
        index = SemanticIndexOperator(task_id="semantic_index", mode="{{ params.mode }}",
                                      **common)
        export = ExportOperator(task_id="export", query="{{ params.query }}",
                                export_dir="{{ params.export_dir }}", outlets=[EXPORT],
                                **common)
        build >> tag >> index >> export
    return dag


manual = dataset_pipeline("mmdm_dataset_pipeline", None, "Full")
incremental = dataset_pipeline("mmdm_dataset_pipeline_incremental", "@hourly", "Increment")
