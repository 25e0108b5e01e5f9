"""
### ELT + ML with a dbt Cloud job in the middle

`extract >> load >> trigger_dbt_cloud_job_run >> [ml_training, record_dbt_model_assets]`

- **extract** lands the day's jaffle-shop orders, customers and payments as CSV files.
- **load** replaces the `raw` tables of the DuckDB warehouse with them (idempotent) and updates the
  `jaffle_shop_raw` asset.
- **trigger_dbt_cloud_job_run** runs the dbt Cloud job that builds staging and mart models, waiting
  in the triggerer (deferrable). It remembers its dbt Cloud run (tagged with this DAG run): a retry
  or a Clear attaches to that run while it is in flight, and after a failure, cancellation or
  timeout resumes *that* run, through dbt Cloud's retry or an exact `steps_override`, so only the
  failed and skipped nodes run again, even if the job ran elsewhere since. This replaces the
  provider's `retry_from_failure` (which reruns the job's *latest* run) and `reuse_existing_run`;
  see `include/dbt_cloud/operator.py`.
- **ml_training** fits a churn model on the `customer_features` mart and logs its metrics.
- **record_dbt_model_assets** turns every model, seed and snapshot the dbt Cloud run built into an
  asset event (alias `dbt_cloud_models`), whatever the dbt task's outcome: failed or skipped nodes
  emit nothing, so a DAG scheduled on one model runs only when that model was rebuilt.

Out of the box the job runs on the local dbt Cloud (`make demo`); point the `dbt_cloud` connection
and the two IDs below at your account to run it on dbt Cloud.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import chain, dag, task

from include.assets import JAFFLE_SHOP_MARTS, RAW_JAFFLE_SHOP
from include.dag_defaults import START_DATE, default_args
from include.dbt_cloud.assets import dbt_model_assets_task
from include.dbt_cloud.operator import DbtCloudResumableRunJobOperator

# --- Edit these two for your dbt Cloud job ---------------------------------------------------------
# Both are in the job's URL, e.g. https://cloud.getdbt.com/#/accounts/16173/projects/36467/jobs/65767/
#   ACCOUNT_ID = 16173  (the number after /accounts/)
#   JOB_ID     = 65767  (the number after /jobs/)
# The defaults are the local dbt Cloud's demo account and its "eltml build" job.
ACCOUNT_ID = 1
JOB_ID = 1
# ---------------------------------------------------------------------------------------------------


@dag(
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    # Owner, retries (2) and the failure email (off until an alerts_smtp connection exists), plus the
    # dbt Cloud connection, account and hook settings every dbt Cloud operator in this DAG uses.
    default_args=default_args(account_id=ACCOUNT_ID),
    tags=["dbt-cloud", "eltml"],
    doc_md=__doc__,
)
def dbt_cloud_provider_eltml():
    @task(multiple_outputs=False)
    def extract(*, run_id: str) -> dict[str, str]:
        from include.eltml.tasks import extract_raw_files

        return extract_raw_files(run_id)

    @task(outlets=[RAW_JAFFLE_SHOP], multiple_outputs=False)
    def load(files: dict[str, str]) -> dict[str, int]:
        from include.eltml.tasks import load_raw_files

        return load_raw_files(files)

    # A retry or a cleared task attaches to, or resumes from the failure, the run it launched.
    trigger_dbt_cloud_job_run = DbtCloudResumableRunJobOperator(
        task_id="trigger_dbt_cloud_job_run",
        job_id=JOB_ID,
        deferrable=True,  # wait in the triggerer, not in a worker slot
        check_interval=10,
        execution_timeout=timedelta(hours=1),  # on timeout the dbt Cloud run is cancelled
        outlets=[JAFFLE_SHOP_MARTS],
    )

    @task(multiple_outputs=False)
    def ml_training(*, run_id: str) -> dict[str, float]:
        from include.eltml.tasks import train_churn_model

        return train_churn_model(run_id)

    chain(load(extract()), trigger_dbt_cloud_job_run, ml_training())
    trigger_dbt_cloud_job_run >> dbt_model_assets_task(trigger_dbt_cloud_job_run.task_id)()


dbt_cloud_provider_eltml()
