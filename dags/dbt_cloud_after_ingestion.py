"""
### Run dbt Cloud right after ingestion lands: asset-driven scheduling

The guide's FAQ 3b (kick off dbt after Fivetran or any loader): this DAG has no clock. It runs every
time the `jaffle_shop_raw` asset is updated, here by the eltml DAG's `load` task; in your project,
by whichever DAG (or Fivetran/Airbyte sensor) lands the data. Producer and consumer never reference
each other, only the asset.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.dbt.cloud.operators.dbt import DbtCloudRunJobOperator
from airflow.sdk import dag

from include.assets import JAFFLE_SHOP_DAILY_MODELS, RAW_JAFFLE_SHOP
from include.dag_defaults import START_DATE, default_args


@dag(
    schedule=[RAW_JAFFLE_SHOP],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retry_delay=timedelta(minutes=1)),
    tags=["dbt-cloud", "asset-driven"],
    doc_md=__doc__,
)
def dbt_cloud_after_ingestion():
    DbtCloudRunJobOperator(
        task_id="run_daily_models",
        project_name="jaffle_shop",
        environment_name="Production",
        job_name="Daily Run [[daily_run]]",  # as dbt-jobs-as-code names it (dbt_cloud_jobs/jobs.yml)
        deferrable=True,
        retry_from_failure=True,
        reuse_existing_run=True,
        check_interval=15,
        execution_timeout=timedelta(hours=3),
        outlets=[JAFFLE_SHOP_DAILY_MODELS],
    )


dbt_cloud_after_ingestion()
