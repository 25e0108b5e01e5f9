"""
### Rerun exactly what failed in a dbt Cloud run

Trigger with the failed run's id (the number at the end of its dbt Cloud URL). The DAG reads that
run's steps and artifacts (run_results.json, manifest.json) through the dbt Cloud API, computes the
commands that rerun exactly what `dbt retry` would (the errored/failed nodes and the nodes skipped
because of them, with the original command and flags, selected by exact fqn), logs each node it
reruns and why, then triggers the job with those commands as `steps_override` and waits.

**When to use it:** the eltml DAG's own retry (clear `trigger_dbt_cloud_job_run`) already calls dbt
Cloud's native *rerun from failure*; prefer it. Use this DAG when you need control the native rerun
does not give: rerun an older run than the job's latest, choose which statuses count as failed
(e.g. include `warn`), or see the exact command before dbt Cloud runs it.
"""

from __future__ import annotations

from airflow.providers.dbt.cloud.sensors.dbt import DbtCloudJobRunSensor
from airflow.sdk import Param, dag, task

from include.dag_defaults import START_DATE, default_args

ACCOUNT_ID = 1  # your dbt Cloud account id (the number after /accounts/ in any dbt Cloud URL)


@dag(
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    default_args=default_args(account_id=ACCOUNT_ID),
    params={
        "run_id": Param(None, type=["null", "integer"], minimum=1, title="dbt Cloud run id to rerun"),
        "statuses": Param(
            [],
            type="array",
            items={
                "type": "string",
                "enum": ["error", "fail", "skipped", "runtime error", "partial success", "warn"],
            },
            title="Statuses to rerun",
            description="Empty: the statuses dbt retry reruns.",
        ),
        "include_warn": Param(
            False, type="boolean", title="Also rerun warnings (like dbt retry --warn-error)"
        ),
    },
    tags=["dbt-cloud", "rerun"],
    doc_md=__doc__,
)
def dbt_cloud_rerun_parser():
    @task(multiple_outputs=False)
    def plan_rerun(*, params, run_id: str) -> dict:
        from airflow.exceptions import AirflowSkipException

        from include.dbt_cloud import rerun
        from include.dbt_cloud.hook import dbt_cloud_hook

        if not params["run_id"]:
            raise ValueError("Set the 'run_id' param to the failed dbt Cloud run's id (Trigger DAG form).")
        plan = rerun.plan_rerun(
            dbt_cloud_hook(),
            ACCOUNT_ID,
            int(params["run_id"]),
            statuses=params["statuses"],
            include_warn=params["include_warn"],
            airflow_run_id=run_id,
        )
        if not isinstance(plan, rerun.RerunRequest):
            raise AirflowSkipException(f"Nothing to rerun: {plan.reason}.")
        return plan.__dict__

    @task
    def trigger_rerun(plan: dict) -> int:
        from include.dbt_cloud.hook import dbt_cloud_hook
        from include.dbt_cloud.rerun import RerunRequest, trigger_once

        return trigger_once(dbt_cloud_hook(), ACCOUNT_ID, RerunRequest(**plan))

    rerun_run_id = trigger_rerun(plan_rerun())
    DbtCloudJobRunSensor(
        task_id="wait_for_rerun",
        run_id=rerun_run_id,
        deferrable=True,
        poke_interval=10,
        timeout=60 * 60 * 3,
    )


dbt_cloud_rerun_parser()
