"""
What a run executes: the plan stored with the run when it is created, and the plan of a rerun.

A plan is fixed at creation, not at execution, so a queued run does what was asked even if the
config changes before it starts, and so that a rerun can be computed from the failed run's own plan.

Rerun from failure (``/rerun/``) follows dbt Cloud: the failed step becomes ``dbt retry`` pointed at
that step's ``run_results.json`` (dbt then replays the original command and flags for the failed and
skipped nodes only), and the steps after it run as planned. When dbt left no usable results (it
stopped before writing them, e.g. on a parse error, or the command is one ``dbt retry`` cannot
replay), the failed step runs again as it was planned, which for a step that was a retry itself
means retrying again from the same earlier results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from dbt_cloud_local.commands import Step, parse_step
from dbt_cloud_local.config import Job
from dbt_cloud_local.records import PlannedStep, RetrySource, RunRecord, RunTrigger, StepRecord
from dbt_cloud_local.store import ERROR
from dbt_cloud_local.workspace import RunWorkspace

#: Commands ``dbt retry`` can replay (dbt-core's ``dbt.task.retry.TASK_DICT``).
RETRYABLE_COMMANDS = frozenset(
    {"build", "compile", "clone", "generate", "seed", "snapshot", "test", "run", "run-operation"}
)
DOCS_GENERATE = PlannedStep(command="dbt docs generate", args=("docs", "generate"))


def plan_run(job: Job, steps: Sequence[Step] | None, generate_docs: bool) -> tuple[PlannedStep, ...]:
    """The job's steps (or the ``steps_override``), then ``dbt docs generate`` if asked and not there."""
    chosen = list(steps) if steps is not None else [parse_step(command) for command in job.execute_steps]
    plan = [PlannedStep.from_step(step) for step in chosen]
    if generate_docs and not any(step.is_docs_generate for step in chosen):
        plan.append(DOCS_GENERATE)
    return tuple(plan)


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
    The plan that resumes ``failed_run`` (an errored run) from its first failed step.

    ``steps`` are the steps the failed run executed and ``workspace`` its files, where the failed
    step's ``run_results.json`` is looked for. A run that failed before any step failed (packages
    did not install, the server stopped) is run again from the start.
    """
    failed = next((step for step in steps if step.status == ERROR), None)
    if failed is None:
        return failed_run.plan
    position = failed.index - 1
    if retryable(workspace.target(failed.index) / "run_results.json"):
        first = PlannedStep(
            command="dbt retry",
            args=("retry",),
            retry_of=RetrySource(run_id=failed_run.id, step=failed.index),
        )
    else:
        first = failed_run.plan[position]
    return (first, *failed_run.plan[position + 1 :])


def rerun_trigger(failed_run: RunRecord) -> RunTrigger:
    """The failed run's overrides, with the cause of a rerun (a rerun never overrides steps)."""
    return replace(
        failed_run.trigger,
        cause=f"Rerun from failure of run #{failed_run.id}",
        cause_category="rerun",
        steps_override=None,
    )
