"""Scale-out on Airflow itself: tag and index one version in N shards with dynamic task
mapping, so any worker (Celery, Kubernetes) takes a shard. Shards split the files by key and
never overlap; each shard is its own dataset job.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from mmdm.airflow_plugin.operators.indexing import SemanticIndexOperator
from mmdm.airflow_plugin.operators.tagging import SmartTagOperator

with DAG(
    dag_id="mmdm_sharded_tagging",
    schedule=None,
    catchup=False,
    tags=["mmdm"],
    doc_md=__doc__,
    params={
        "dataset": Param("quickstart-samples", type="string"),
        "version": Param("v1", type="string"),
        "prompt": Param("pixel-statistics", type="string"),
        "shards": Param(4, type="integer", minimum=1, maximum=256),
    },
) as dag:

    @task
    def shards(params: dict | None = None) -> list[list[int]]:
        count = int(params["shards"]) if params else 1
        return [[i, count] for i in range(count)]

    parts = shards()
    common = {"dataset": "{{ params.dataset }}", "version": "{{ params.version }}"}
    tag = SmartTagOperator.partial(task_id="smart_tag", prompt="{{ params.prompt }}",
                                   mode="Full", **common).expand(shard=parts)
    index = SemanticIndexOperator.partial(task_id="semantic_index", mode="Full",
                                          **common).expand(shard=parts)
    tag >> index
