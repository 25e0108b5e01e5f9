"""Rerun a failed dbt Cloud run through the API: read its steps and artifacts, plan, trigger once.

The bridge between the dbt Cloud provider's hook and the pure planning in ``include.rerun_parser``.
Used by the ``dbt_cloud_rerun_parser`` DAG; every call goes through ``DbtCloudHook``, so it works
unchanged against dbt Cloud and against the local dbt Cloud.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudJobRunStatus

from include.rerun_parser import (
    JobRerun,
    JobStep,
    NothingToRerun,
    parse_manifest,
    parse_run_results,
    plan_job_rerun,
)

if TYPE_CHECKING:
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook

log = logging.getLogger(__name__)

RUN_ERROR, RUN_SUCCESS, RUN_CANCELLED = (
    DbtCloudJobRunStatus.ERROR.value,
    DbtCloudJobRunStatus.SUCCESS.value,
    DbtCloudJobRunStatus.CANCELLED.value,
)
_INVOKE_DBT = re.compile(r"^Invoke dbt with `(?P<command>.+)`$")
#: Steps dbt Cloud adds around a job's own commands; they are not the job's to rerun.
_IMPLICIT_COMMANDS = ("dbt deps", "dbt docs generate")


class RunNotRerunnableError(RuntimeError):
    """The run given is not a finished, failed run of a job (still running, unknown, ...)."""


@dataclass(frozen=True)
class RerunRequest:
    """What to trigger: the job, its step overrides, and the cause that makes the trigger idempotent."""

    job_id: int
    steps_override: list[str]
    cause: str
    rerun_unique_ids: list[str]


def read_job_steps(hook: DbtCloudHook, account_id: int | None, run_id: int) -> tuple[int, list[JobStep]]:
    """Return the run's job id and its job steps, with the failed step's artifacts attached."""
    related = ["run_steps", "job", "trigger"]
    run = hook.get_job_run(run_id=run_id, account_id=account_id, include_related=related).json()["data"]
    status = run["status"]
    if status == RUN_SUCCESS:
        return run["job_definition_id"], []
    if status not in (RUN_ERROR, RUN_CANCELLED):
        raise RunNotRerunnableError(
            f"Run {run_id} is {run.get('status_humanized', status)}: wait until it finishes, then rerun."
        )
    # What the run was asked to do: its steps_override if it had one, else the job's own steps.
    planned = (run.get("trigger") or {}).get("steps_override") or (run.get("job") or {}).get("execute_steps")
    commands = [command for command in planned or [] if command not in _IMPLICIT_COMMANDS]
    run_steps = [step for step in run.get("run_steps") or [] if _step_command(step) is not None]
    if not commands:  # no job definition returned: fall back to the commands the run invoked
        commands = [
            _step_command(step) for step in run_steps if _step_command(step) not in _IMPLICIT_COMMANDS
        ]
    steps: list[JobStep] = []
    remaining = list(run_steps)
    for command in commands:
        match = next((s for s in remaining if _step_command(s) == command), None)
        if match is not None:
            remaining = remaining[remaining.index(match) + 1 :]
        succeeded = match is not None and match["status"] == RUN_SUCCESS
        first_failure = match is not None and not succeeded and all(step.succeeded for step in steps)
        if first_failure:  # only the step that failed needs its artifacts: later ones rerun as they are
            steps.append(_failed_step_with_artifacts(hook, account_id, run_id, command, match["index"]))
        else:
            steps.append(JobStep(command=command, succeeded=succeeded))
    return run["job_definition_id"], steps


def plan_rerun(
    hook: DbtCloudHook,
    account_id: int | None,
    run_id: int,
    *,
    statuses: list[str] | None = None,
    include_warn: bool = False,
    airflow_run_id: str,
) -> RerunRequest | NothingToRerun:
    """Plan the rerun of ``run_id``; log which nodes rerun and why."""
    job_id, steps = read_job_steps(hook, account_id, run_id)
    if not steps:
        return NothingToRerun(f"run {run_id} did not fail, so there is nothing to rerun")
    plan = plan_job_rerun(steps, statuses=statuses or None, warn_error=include_warn)
    if isinstance(plan, NothingToRerun):
        return plan
    _log_plan(run_id, steps, plan)
    rerun_ids = list(plan.failed_step_rerun.unique_ids) if plan.failed_step_rerun else []
    return RerunRequest(
        job_id=job_id,
        steps_override=[str(command) for command in plan.commands],
        cause=f"Airflow rerun-parser: rerun of run {run_id} ({airflow_run_id})"[:255],
        rerun_unique_ids=rerun_ids,
    )


def trigger_once(hook: DbtCloudHook, account_id: int | None, request: RerunRequest) -> int:
    """Trigger the rerun unless a run with the same cause exists already; return its run id.

    The cause names the Airflow DAG run, so a retried task (lost worker, API timeout after the POST)
    finds the run it already started instead of starting a duplicate.
    """
    recent = hook.get_job_runs(
        account_id=account_id,
        payload={
            "job_definition_id": request.job_id,
            "order_by": "-id",
            "limit": 50,
            "include_related": '["trigger"]',
        },
    ).json()["data"]
    for run in recent:
        if (run.get("trigger") or {}).get("cause") == request.cause:
            log.info("Run %s was already triggered for this rerun; attaching to it.", run["id"])
            return int(run["id"])
    response = hook.trigger_job_run(
        job_id=request.job_id,
        cause=request.cause,
        account_id=account_id,
        steps_override=request.steps_override,
    ).json()["data"]
    log.info("Triggered rerun run %s: %s", response["id"], response.get("href"))
    return int(response["id"])


def _failed_step_with_artifacts(
    hook: DbtCloudHook, account_id: int | None, run_id: int, command: str, step_index: int
) -> JobStep:
    run_results = _artifact(hook, account_id, run_id, "run_results.json", step_index)
    manifest = _artifact(hook, account_id, run_id, "manifest.json", step_index)
    source = f"run {run_id} step {step_index}"
    return JobStep(
        command=command,
        succeeded=False,
        run_results=parse_run_results(run_results, f"{source} run_results.json") if run_results else None,
        manifest=parse_manifest(manifest, f"{source} manifest.json") if manifest else None,
    )


def _artifact(hook: DbtCloudHook, account_id: int | None, run_id: int, path: str, step: int) -> Any:
    """An artifact's JSON, or None when the step did not write it (it failed before dbt got there)."""
    from requests import HTTPError

    try:
        return hook.get_job_run_artifact(run_id=run_id, path=path, account_id=account_id, step=step).json()
    except HTTPError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            log.warning("Run %s step %s has no %s: its command reruns in full.", run_id, step, path)
            return None
        raise


def _step_command(step: dict[str, Any]) -> str | None:
    match = _INVOKE_DBT.match(step.get("name") or "")
    return match["command"] if match else None


def _log_plan(run_id: int, steps: list[JobStep], plan: JobRerun) -> None:
    failed = steps[plan.failed_step_index]
    log.info("Run %s failed at step %d: %s", run_id, plan.failed_step_index + 1, failed.command)
    if plan.failed_step_rerun and failed.run_results:
        statuses = {result.unique_id: result.status for result in failed.run_results.results}
        for unique_id in plan.failed_step_rerun.unique_ids:
            log.info("  rerun %-60s (was %s)", unique_id, statuses.get(unique_id, "?"))
        if not plan.exact:
            log.warning("No manifest.json for the failed step: selectors are best effort (by name).")
    for number, command in enumerate(plan.commands, start=1):
        log.info("Rerun step %d: %s", number, command)
