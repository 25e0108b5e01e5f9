"""
### dbt Cloud jobs on Airflow schedules: hourly and daily models

The guide's FAQ 1: analytics engineers define jobs such as *Hourly Run* (`dbt build -s tag:hourly`)
and *Daily Run* (`dbt build -s tag:daily`) in dbt Cloud; Airflow only decides *when* they run. Jobs are
looked up by project, environment and job name, so no numeric id is hard-coded here. The names are
the ones dbt-jobs-as-code gives the jobs of `dbt_cloud_jobs/jobs.yml` (`<name> [[<identifier>]]`),
locally and in dbt Cloud alike.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.dbt.cloud.operators.dbt import DbtCloudRunJobOperator
from airflow.sdk import DAG

from include.dag_defaults import START_DATE, default_args

PROJECT_NAME = "jaffle_shop"
ENVIRONMENT_NAME = "Production"
JOBS_BY_SCHEDULE = {"hourly": "Hourly Run [[hourly_run]]", "daily": "Daily Run [[daily_run]]"}

for cadence, job_name in JOBS_BY_SCHEDULE.items():
    with DAG(
        dag_id=f"dbt_cloud_{cadence}_models",
        schedule=f"@{cadence}",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(retry_delay=timedelta(minutes=1)),
        tags=["dbt-cloud", cadence],
        doc_md=__doc__,
    ):
        DbtCloudRunJobOperator(
            task_id="run_dbt_cloud_job",
            project_name=PROJECT_NAME,
            environment_name=ENVIRONMENT_NAME,
            job_name=job_name,
            deferrable=True,
            retry_from_failure=True,
            reuse_existing_run=True,
            check_interval=15,
            execution_timeout=timedelta(minutes=50 if cadence == "hourly" else 180),
        )
