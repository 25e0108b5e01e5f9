"""
What a run executes: the plan stored with the run when it is created, and the plan of a rerun.

A plan is fixed at creation, not at execution, so a queued run does what was asked even if the
config changes before it starts, and so that a rerun can be computed from the failed run's own plan.
A plan lists every step of the run in order, numbered from 1 as dbt Cloud numbers them
(``model.anatomy``): the built-in clone, profile and ``dbt deps`` steps, source freshness when the
job asks, the commands, ``dbt docs generate`` when the job asks.

Rerun from failure (``/rerun/``) follows dbt Cloud: the failed step becomes ``dbt retry`` pointed at
that step's ``run_results.json`` (dbt then replays the original command and flags for the failed and
skipped nodes only), and the steps after it run as planned, after the built-in steps every run starts
with. When dbt left no usable results (it stopped before writing them, e.g. on a parse error, or the
command is one ``dbt retry`` cannot replay), the failed step runs again as it was planned, which for a
step that was a retry itself means retrying again from the same earlier results. A run that failed in
a built-in step (clone, profile, ``dbt deps``) is run again from the start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dbt_cloud_local.model.anatomy import (
    BUILT_IN_STEPS,
    CLONE_STEP_NAME,
    DOCS_GENERATE_STEP,
    SOURCE_FRESHNESS_STEP,
    step_name,
    with_built_in_steps,
)
from dbt_cloud_local.model.commands import Step, parse_step
from dbt_cloud_local.model.records import CLONE, PlannedStep, RetrySource, RunRecord, RunTrigger, StepRecord
from dbt_cloud_local.model.resources import Job
from dbt_cloud_local.model.statuses import CANCELLED, ERROR, IN_FLIGHT, STATUS_HUMANIZED, SUCCESS
from dbt_cloud_local.runs.workspace import RunWorkspace

#: Commands ``dbt retry`` can replay (dbt-core's ``dbt.task.retry.TASK_DICT``).
RETRYABLE_COMMANDS = frozenset(
    {"build", "compile", "clone", "generate", "seed", "snapshot", "test", "run", "run-operation"}
)


def plan_run(
    job: Job, steps: Sequence[Step] | None, generate_docs: bool, generate_sources: bool = False
) -> tuple[PlannedStep, ...]:
    """
    Every step of a run of ``job``: the built-in steps, ``dbt source freshness`` first if the job
    runs it, the job's commands (or ``steps_override``), then ``dbt docs generate`` if asked. Like
    dbt Cloud, the checkbox steps come with a ``steps_override`` too; a command already listed is not
    added twice. A job without commands runs the built-in steps (and checkbox steps) only.
    """
    chosen = list(steps) if steps is not None else [parse_step(command) for command in job.execute_steps]
    commands = [PlannedStep.from_step(step) for step in chosen]
    freshness = generate_sources and not any(step.args[:2] == ("source", "freshness") for step in chosen)
    docs = generate_docs and not any(step.is_docs_generate for step in chosen)
    return (
        *BUILT_IN_STEPS,
        *([SOURCE_FRESHNESS_STEP] if freshness else []),
        *commands,
        *([DOCS_GENERATE_STEP] if docs else []),
    )


def numbered_plan(run: RunRecord, steps: Sequence[StepRecord]) -> tuple[PlannedStep, ...]:
    """
    ``run``'s plan with entry ``n`` as its step ``n + 1``. A plan an older server stored lacks the
    built-in steps: if that server also executed it, its steps were numbered from its first command,
    and so is the plan; if it is still to run, it gets the built-in steps it will run with.
    """
    if run.plan and run.plan[0].kind == CLONE:
        return run.plan
    if steps and steps[0].name != CLONE_STEP_NAME:
        return run.plan
    return with_built_in_steps(run.plan)


def retryable(results: Path) -> bool:
    """Whether ``dbt retry`` can replay the command recorded in a ``run_results.json``."""
    try:
        command = json.loads(results.read_text())["args"]["which"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return command in RETRYABLE_COMMANDS


def plan_rerun(
    failed_run: RunRecord, steps: Sequence[StepRecord], workspace: RunWorkspace
) -> tuple[PlannedStep, ...]:
    """
    The plan that resumes ``failed_run`` (an errored run) from its failed step.

    ``steps`` are the steps the failed run executed and ``workspace`` its files, where the failed
    step's ``run_results.json`` is looked for. A run that failed before a command failed (in a built-in
    step, or the server stopped) is run again from the start.
    """
    plan = numbered_plan(failed_run, steps)
    failed = failed_step(ERROR, steps)
    if failed is None or not 1 <= failed.index <= len(plan) or plan[failed.index - 1].built_in:
        return with_built_in_steps(plan)
    position = failed.index - 1
    if retryable(workspace.target(failed.index) / "run_results.json"):
        first = PlannedStep(
            command="dbt retry",
            args=("retry",),
            retry_of=RetrySource(run_id=failed_run.id, step=failed.index),
        )
    else:
        first = plan[position]
    return (*BUILT_IN_STEPS, first, *plan[position + 1 :])


def rerun_trigger(failed_run: RunRecord, cause: str | None = None) -> RunTrigger:
    """The failed run's overrides, with the cause of a rerun (a rerun never overrides steps)."""
    return replace(
        failed_run.trigger,
        cause=cause or f"Rerun from failure of run #{failed_run.id}",
        cause_category="rerun",
        steps_override=None,
    )


# Run-level retry (``POST /runs/{id}/retry/``) ----------------------------------------------------


@dataclass(frozen=True)
class RetryRefusal:
    """Why a run cannot be retried: ``reason`` is a value of the spec's ``RetryNotSupportedReasonEnum``."""

    reason: str
    message: str


class RetryRefused(Exception):
    def __init__(self, refusal: RetryRefusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def failed_step(status: int, steps: Sequence[StepRecord]) -> StepRecord | None:
    """
    The step that ended a run that errored (None for any other run): its last errored step. A run
    ends at its first failing step, except for the checkbox steps (source freshness, docs), whose
    failure does not end it: an errored freshness step may come before the step that failed the run.
    """
    if status != ERROR:
        return None
    return next((step for step in reversed(steps) if step.status == ERROR), None)


def retry_refusal(
    run_id: int,
    status: int,
    job_id: int,
    latest_run_id: int | None,
    steps: Sequence[StepRecord],
    workspace: RunWorkspace,
) -> RetryRefusal | None:
    """
    dbt Cloud's rules for retrying a run: it must have failed, be its job's most recent run, and have
    run results (the ``run_results.json`` of its failed step) of a command ``dbt retry`` can replay.
    None when the run can be retried; ``steps`` are only read for a failed latest run.
    """
    trigger = f"trigger job {job_id} (POST /api/v2/accounts/{{account_id}}/jobs/{job_id}/run/)"
    if status in IN_FLIGHT:
        return RetryRefusal(
            "RETRY_NOT_FAILED_RUN",
            f"Run {run_id} has nothing to retry yet: it is still {STATUS_HUMANIZED[status].lower()}; "
            "wait for it to finish (or cancel it) and retry it if it fails",
        )
    if status == SUCCESS:
        return RetryRefusal(
            "RETRY_NOT_FAILED_RUN",
            f"Run {run_id} has nothing to retry: it succeeded; to run it again, {trigger}",
        )
    if status == CANCELLED:
        return RetryRefusal(
            "RETRY_NOT_FAILED_RUN",
            f"Run {run_id} cannot be retried: it was cancelled, and only failed runs can be retried; "
            f"to run it again, {trigger}",
        )
    if status != ERROR:  # pragma: no cover - every status is handled above
        return RetryRefusal("RETRY_NOT_FAILED_RUN", f"Run {run_id} cannot be retried: it did not fail")
    if latest_run_id is not None and latest_run_id != run_id:
        return RetryRefusal(
            "RETRY_NOT_LATEST_RUN",
            f"Run {run_id} cannot be retried: it is not the most recent run of job {job_id} "
            f"(run {latest_run_id} is); retry run {latest_run_id} if it failed, or {trigger}",
        )
    failed = failed_step(status, steps)
    results = workspace.target(failed.index) / "run_results.json" if failed is not None else None
    if results is None or not results.is_file():
        return RetryRefusal(
            "RETRY_NO_RUN_RESULTS",
            f"Run {run_id} cannot be retried: it has no run results (it failed before a dbt step wrote "
            f"run_results.json, e.g. while installing packages or parsing); to run it again, {trigger}",
        )
    if not retryable(results):
        assert failed is not None
        return RetryRefusal(
            "RETRY_UNSUPPORTED_CMD",
            f"Run {run_id} cannot be retried: its failed step `{failed.command}` ran a command dbt retry "
            f"cannot replay; to run it again, {trigger}",
        )
    return None


def failure_details(run: RunRecord, steps: Sequence[StepRecord]) -> tuple[str | None, list[str]]:
    """``RunFailureDetails``: the failed step's name and the names of the planned steps it skipped."""
    failed = failed_step(run.status, steps)
    if failed is None:
        return None, []
    plan = numbered_plan(run, steps)
    override = run.trigger.schema_override
    return failed.name, [step_name(step, override) for step in plan[failed.index :]]
