"""
### Every dbt model a task, one dbt Cloud run

`extract >> load >> eltml_build (launch >> one task per model, seed, snapshot >> finalize)`, and
`customer_features >> ml_training`.

The eltml pipeline again, with the dbt Cloud job *eltml build* rendered node by node: each model, seed
and snapshot is a task in the grid (its tests folded in), wired like the dbt project, and the whole
group is still **one dbt Cloud run**. A failing model fails its own task; what dbt skipped below it is
`upstream_failed`; everything else is green. Fix the cause, clear the failed task with its downstream:
one new dbt Cloud run builds exactly those nodes, and their tasks take its outcomes.
`ml_training` waits for `customer_features` only.

The tasks come from the job's stored manifest, `include/dbt_manifests/eltml_build.json` (refresh it
with `make dbt-manifest`), never from the network at parse time. How it works, and when to prefer the
single-task eltml DAG: `docs/models-as-tasks.md`.
"""

from __future__ import annotations

from airflow.sdk import chain, dag, task

from include.dag_defaults import START_DATE, default_args
from include.dbt_cloud.task_group import dbt_cloud_job_task_group

# The same account and job as dbt_cloud_provider_eltml; the manifest must come from this job.
ACCOUNT_ID = 1
JOB_ID = 1
MANIFEST = "include/dbt_manifests/eltml_build.json"


@dag(
    schedule=None,  # on demand: the eltml DAG runs the same job on its schedule
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(account_id=ACCOUNT_ID),
    tags=["dbt-cloud", "eltml", "models-as-tasks"],
    doc_md=__doc__,
)
def dbt_cloud_models_as_tasks():
    @task(multiple_outputs=False)
    def extract(*, run_id: str) -> dict[str, str]:
        from include.eltml.tasks import extract_raw_files

        return extract_raw_files(run_id)

    @task(multiple_outputs=False)
    def load(files: dict[str, str]) -> dict[str, int]:
        from include.eltml.tasks import load_raw_files

        return load_raw_files(files)

    @task(multiple_outputs=False)
    def ml_training(*, run_id: str) -> dict[str, float]:
        from include.eltml.tasks import train_churn_model

        return train_churn_model(run_id)

    eltml_build = dbt_cloud_job_task_group(MANIFEST, job_id=JOB_ID, account_id=ACCOUNT_ID, check_interval=5)
    chain(load(extract()), eltml_build.group)
    eltml_build.node("customer_features") >> ml_training()


dbt_cloud_models_as_tasks()
