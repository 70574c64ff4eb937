"""The dataset jobs that PAI's CreateDatasetJob starts through mmdm's API inside Airflow.

The API records the job and triggers a run of this DAG with ``{"DatasetJobId": "dsjob-…"}``;
the run's one task runs that job on the deployment's executor. It is not scheduled, and not
paused when it appears, so a job request runs without anyone unpausing it first.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from mmdm.airflow_plugin.operators.job import DatasetJobOperator

with DAG(dag_id="mmdm_dataset_job", schedule=None, catchup=False, tags=["mmdm"],
         is_paused_upon_creation=False, doc_md=__doc__,
         params={"DatasetJobId": Param("", type="string", description="the job to run")},
         max_active_runs=16) as dag:
    # Someone is waiting on a request's job (a gallery export, say): when the executor's
    # slots are taken by pipeline runs, it goes first.
    DatasetJobOperator(task_id="run_job", job_id="{{ params.DatasetJobId }}", retries=1,
                       priority_weight=100, weight_rule="absolute")
