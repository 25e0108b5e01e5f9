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
#: Steps dbt Cloud adds around a job's own commands; they are not the job's to rerun. Every run starts
#: with ``Clone git repository``, ``Create profile from connection <type>`` (no dbt command) and
#: ``dbt deps`` (steps 1 to 3; the job's commands follow from step 4); the source freshness and docs
#: checkboxes add ``dbt source freshness`` first and ``dbt docs generate`` last.
_IMPLICIT_COMMANDS = ("dbt deps", "dbt docs generate")
_ADDED_COMMANDS = (*_IMPLICIT_COMMANDS, "dbt source freshness")
RETRY_COMMAND = "dbt retry"


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
    job_id, steps, _ = _read_job_steps(hook, account_id, run_id)
    return job_id, steps


def _read_job_steps(
    hook: DbtCloudHook, account_id: int | None, run_id: int
) -> tuple[int, list[JobStep], list[int | None]]:
    """``read_job_steps``, with the dbt Cloud step index of each job step (None: it never ran).

    A retry of another run (dbt Cloud's run-level retry or the job's rerun-from-failure, which set
    ``retrying_run_id``) planned ``dbt retry`` and then the steps after the original's failed step;
    when it stopped before its ``dbt retry`` wrote results, there is nothing of its own to resume
    from, so the original run is resumed instead.
    """
    run = _get_run(hook, account_id, run_id)
    status = run["status"]
    if status == RUN_SUCCESS:
        return run["job_definition_id"], [], []
    if status not in (RUN_ERROR, RUN_CANCELLED):
        raise RunNotRerunnableError(
            f"Run {run_id} is {run.get('status_humanized', status)}: wait until it finishes, then rerun."
        )
    steps: list[JobStep] = []
    indexes: list[int | None] = []
    for command, match in _match_steps(_planned_commands(hook, account_id, run), run):
        indexes.append(match["index"] if match is not None else None)
        succeeded = match is not None and match["status"] == RUN_SUCCESS
        first_failure = match is not None and not succeeded and all(step.succeeded for step in steps)
        if first_failure:  # only the step that failed needs its artifacts: later ones rerun as they are
            steps.append(_failed_step_with_artifacts(hook, account_id, run_id, command, match["index"]))
        else:
            steps.append(JobStep(command=command, succeeded=succeeded))
    original = run.get("retrying_run_id")
    failed = next((step for step in steps if not step.succeeded), None)
    if original and failed is not None and failed.command == RETRY_COMMAND and failed.run_results is None:
        log.info(
            "Run %s retried run %s but its `dbt retry` left no results: resuming run %s.",
            run_id,
            original,
            original,
        )
        return _read_job_steps(hook, account_id, int(original))
    return run["job_definition_id"], steps, indexes


def _get_run(hook: DbtCloudHook, account_id: int | None, run_id: int) -> dict[str, Any]:
    related = ["run_steps", "job", "trigger"]
    return hook.get_job_run(run_id=run_id, account_id=account_id, include_related=related).json()["data"]


def _planned_commands(hook: DbtCloudHook, account_id: int | None, run: dict[str, Any]) -> list[str]:
    """What the run was asked to do, without the steps dbt Cloud adds (deps, docs generate)."""
    original_id = run.get("retrying_run_id")
    if original_id:  # a retry: `dbt retry` (or the failed command again), then the original's later steps
        original = _get_run(hook, account_id, int(original_id))
        matched = _match_steps(_planned_commands(hook, account_id, original), original)
        failed = next((i for i, (_, step) in enumerate(matched) if not _succeeded(step)), len(matched))
        invoked = _invoked_commands(run)
        first = invoked[0] if invoked else RETRY_COMMAND
        return [first, *(command for command, _ in matched[failed + 1 :])]
    # Its steps_override if it had one, else the job's own steps.
    planned = (run.get("trigger") or {}).get("steps_override") or (run.get("job") or {}).get("execute_steps")
    commands = [command for command in planned or [] if command not in _IMPLICIT_COMMANDS]
    return commands or _invoked_commands(run)  # no job definition returned: what the run invoked


def _invoked_commands(run: dict[str, Any]) -> list[str]:
    """The commands the run's steps invoked, without the steps dbt Cloud added (deps, the checkboxes)."""
    commands = (_step_command(step) for step in run.get("run_steps") or [])
    return [command for command in commands if command is not None and command not in _ADDED_COMMANDS]


def _match_steps(commands: list[str], run: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """Each planned command with the run step that executed it (None: it never started)."""
    remaining = [step for step in run.get("run_steps") or [] if _step_command(step) is not None]
    matched: list[tuple[str, dict[str, Any] | None]] = []
    for command in commands:
        match = next((s for s in remaining if _step_command(s) == command), None)
        if match is not None:
            remaining = remaining[remaining.index(match) + 1 :]
        matched.append((command, match))
    return matched


def _succeeded(step: dict[str, Any] | None) -> bool:
    return step is not None and step["status"] == RUN_SUCCESS


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
    job_id, steps, indexes = _read_job_steps(hook, account_id, run_id)
    if not steps:
        return NothingToRerun(f"run {run_id} did not fail, so there is nothing to rerun")
    plan = plan_job_rerun(steps, statuses=statuses or None, warn_error=include_warn)
    if isinstance(plan, NothingToRerun):
        return plan
    _log_plan(run_id, steps, plan, indexes[plan.failed_step_index])
    rerun_ids = list(plan.failed_step_rerun.unique_ids) if plan.failed_step_rerun else []
    return RerunRequest(
        job_id=job_id,
        steps_override=[str(command) for command in plan.commands],
        cause=f"Airflow rerun-parser: rerun of run {run_id} ({airflow_run_id})"[:255],
        rerun_unique_ids=rerun_ids,
    )


@dataclass(frozen=True)
class RunChain:
    """The runs of a job that carry one cause, with the retries of them, as dbt Cloud lists them.

    ``head`` is the newest run of the chain (what to attach to or resume), ``later`` the job's runs
    after it that are not part of it (a schedule, a colleague, another DAG), newest first.
    """

    head: dict[str, Any] | None
    later: list[dict[str, Any]]
    scanned: int


def find_run_chain(
    hook: DbtCloudHook, account_id: int | None, job_id: int, cause: str, *, max_runs: int = 200
) -> RunChain:
    """Find the newest run of ``job_id`` triggered with ``cause``, or retrying such a run.

    Reads the job's runs newest first, at most ``max_runs`` of them (pages of 100). A run joins the
    chain when its trigger's cause is ``cause`` or when it retries (``retrying_run_id``) a run of the
    chain: dbt Cloud's retries carry a cause of their own.
    """
    runs: list[dict[str, Any]] = []
    while len(runs) < max_runs:
        payload = {
            "job_definition_id": job_id,
            "order_by": "-id",
            "limit": min(100, max_runs - len(runs)),
            "offset": len(runs),
            "include_related": '["trigger"]',
        }
        page = hook.get_job_runs(account_id=account_id, payload=payload).json()
        runs.extend(page["data"])
        total = ((page.get("extra") or {}).get("pagination") or {}).get("total_count")
        if not page["data"] or (total is not None and len(runs) >= total):
            break
    chain: set[int] = set()
    for run in sorted(runs, key=lambda run: run["id"]):
        retried = run.get("retrying_run_id")
        if (run.get("trigger") or {}).get("cause") == cause or (retried and int(retried) in chain):
            chain.add(run["id"])
    if not chain:
        return RunChain(head=None, later=[], scanned=len(runs))
    head_id = max(chain)
    head = next(run for run in runs if run["id"] == head_id)
    later = [run for run in runs if run["id"] > head_id and run["id"] not in chain]
    return RunChain(head=head, later=sorted(later, key=lambda run: -run["id"]), scanned=len(runs))


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


def _log_plan(run_id: int, steps: list[JobStep], plan: JobRerun, failed_index: int | None) -> None:
    """Log which nodes rerun and why. Steps are named by their dbt Cloud index (the job's first command
    is step 4: steps 1 to 3 are the clone, profile and ``dbt deps`` steps every run starts with)."""
    failed = steps[plan.failed_step_index]
    where = f"step {failed_index}" if failed_index is not None else "a step that never ran"
    log.info("Run %s failed at %s: %s", run_id, where, failed.command)
    if plan.failed_step_rerun and failed.run_results:
        statuses = {result.unique_id: result.status for result in failed.run_results.results}
        for unique_id in plan.failed_step_rerun.unique_ids:
            log.info("  rerun %-60s (was %s)", unique_id, statuses.get(unique_id, "?"))
        if not plan.exact:
            log.warning("No manifest.json for the failed step: selectors are best effort (by name).")
    elif plan.failed_step_rerun is None:
        log.info(
            "%s (`%s`) left no run_results.json to plan from (it stopped before dbt wrote them, or "
            "failed outside any node): it runs again as it was; the steps before it succeeded and "
            "do not run again.",
            where.capitalize(),
            failed.command,
        )
    for number, command in enumerate(plan.commands, start=1):
        log.info("Rerun command %d: %s", number, command)
