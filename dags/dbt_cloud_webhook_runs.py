"""
### Record dbt Cloud runs started anywhere: per-model assets from dbt Cloud webhooks

Triggered by the dbt Cloud webhook receiver (`plugins/dbt_cloud_webhooks.py`, on the api-server at
`/dbt-cloud-webhooks/events`) for every `job.run.completed` / `job.run.errored` event, whoever started
the run: dbt Cloud's scheduler, a person, another tool. Its task reads the run's artifacts and adds one
asset event per model, seed and snapshot that built successfully to the `dbt_cloud_models` alias, so
DAGs scheduled on a model's asset run no matter where the dbt Cloud run came from. Runs an Airflow
dbt task launched (their cause starts with "Airflow task") are left to that task's DAG, which records
them itself.

Conf (set by the receiver): `account_id`, `job_id`, `run_id`, `event_id`. One DAG run per dbt Cloud
run: replayed or repeated events for the same run do not create another.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from include.dag_defaults import START_DATE, default_args
from include.dbt_cloud.assets import DBT_CLOUD_MODELS


@dag(
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    is_paused_upon_creation=False,
    default_args=default_args(),
    tags=["dbt-cloud", "webhooks", "asset-driven"],
    doc_md=__doc__,
)
def dbt_cloud_webhook_runs():
    @task(outlets=[DBT_CLOUD_MODELS])
    def record_model_assets(dag_run: Any = None, outlet_events: Any = None) -> int:
        """Asset events for the nodes the dbt Cloud run built (none for failed or skipped nodes)."""
        from include.dbt_cloud.webhooks import record_webhook_run

        return record_webhook_run(dag_run.conf or {}, outlet_events)

    record_model_assets()


dbt_cloud_webhook_runs()
