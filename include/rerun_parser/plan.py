"""From a failed step's artifacts to the dbt command(s) that rerun exactly what ``dbt retry`` would.

Two entry points: ``plan_step_rerun`` for one dbt invocation, and ``plan_job_rerun`` for a multi-step
job (dbt Cloud's ``/rerun/``: the failed step retried, then the steps after it as they were).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from include.rerun_parser.artifacts import Manifest, RunResults
from include.rerun_parser.compact import compact_selection
from include.rerun_parser.errors import UnsupportedCommandError
from include.rerun_parser.replayed_flags import replayed_flags
from include.rerun_parser.retry_set import retry_statuses, unique_ids_to_retry
from include.rerun_parser.selectors import (
    best_effort_selection,
    exact_selection,
    exact_selection_with_collisions,
)

#: ``args.which`` -> dbt sub-command words; exactly the commands dbt 1.11 ``retry`` can replay.
RETRYABLE_COMMANDS: dict[str, tuple[str, ...]] = {
    "build": ("build",),
    "run": ("run",),
    "test": ("test",),
    "seed": ("seed",),
    "snapshot": ("snapshot",),
    "compile": ("compile",),
    "clone": ("clone",),
    "generate": ("docs", "generate"),
    "run-operation": ("run-operation",),
}


@dataclass(frozen=True)
class DbtCommand:
    """A dbt command line, without project/profiles/target paths (the caller's environment adds them)."""

    argv: tuple[str, ...]

    @classmethod
    def parse(cls, command_line: str) -> DbtCommand:
        return cls(tuple(shlex.split(command_line)))

    def __str__(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class StepRerun:
    """The command rerunning one step's retry set; ``exact`` is False when no manifest proved it."""

    command: DbtCommand
    unique_ids: tuple[str, ...]
    exact: bool
    #: The same rerun as one selector per node, when ``command`` is shorter (graph operators/exclusions).
    enumerated_command: DbtCommand | None = None


@dataclass(frozen=True)
class NothingToRerun:
    """Nothing failed (or nothing matched the statuses): there is no command to run, and why."""

    reason: str


@dataclass(frozen=True)
class JobStep:
    """One step of a job, as the job run reported it.

    ``succeeded`` is the step's own outcome; ``run_results``/``manifest`` are its artifacts when the
    step ran far enough to write them (a step that never started, or crashed while parsing, has none).
    """

    command: str
    succeeded: bool
    run_results: RunResults | None = None
    manifest: Manifest | None = None


@dataclass(frozen=True)
class JobRerun:
    """Commands to run in order: the failed step's rerun, then every later step as it was."""

    commands: tuple[DbtCommand, ...]
    failed_step_index: int
    failed_step_rerun: StepRerun | None
    exact: bool


def plan_step_rerun(
    run_results: RunResults,
    manifest: Manifest | None = None,
    *,
    statuses: Iterable[str] | None = None,
    warn_error: bool = False,
) -> StepRerun | NothingToRerun:
    """The ``dbt retry`` equivalent of one failed invocation, as a plain dbt command.

    ``statuses`` defaults to dbt retry's; ``warn_error`` adds ``warn`` results and, like
    ``dbt retry --warn-error``, runs the rerun with ``--warn-error``.
    """
    words = RETRYABLE_COMMANDS.get(run_results.command)
    if words is None:
        raise UnsupportedCommandError(
            f"{run_results.source}: 'dbt {run_results.command}' cannot be retried (dbt retry only replays "
            f"{', '.join(sorted(RETRYABLE_COMMANDS))}); rerun its original command instead"
        )
    chosen_statuses = retry_statuses(warn_error, statuses)
    unique_ids = unique_ids_to_retry(run_results, chosen_statuses)
    if not unique_ids:
        return NothingToRerun(
            f"{run_results.source}: no result with status {', '.join(sorted(chosen_statuses))} "
            f"among {len(run_results.results)} result(s) of 'dbt {run_results.command}'"
        )
    argv = ["dbt", *words]
    tail = replayed_flags(run_results.args) + (["--warn-error"] if warn_error else [])
    if run_results.command == "run-operation":
        return StepRerun(DbtCommand((*argv, *_run_operation_arguments(run_results), *tail)), unique_ids, True)
    if manifest is None:
        selection = ExactSelection(("--select", *best_effort_selection(unique_ids).selectors), None, False)
    else:
        selection = select_exactly(
            unique_ids, manifest, run_results.command, original_select=run_results.args.get("select")
        )
    command = DbtCommand((*argv, *selection.argv, "--indirect-selection", "empty", *tail))
    enumerated = selection.enumerated_argv
    enumerated_command = (
        DbtCommand((*argv, *enumerated, "--indirect-selection", "empty", *tail)) if enumerated else None
    )
    return StepRerun(command, unique_ids, selection.exact, enumerated_command)


@dataclass(frozen=True)
class ExactSelection:
    """``--select``/``--exclude`` arguments that pick a set of nodes, and how sure that is.

    ``argv`` is the shortest form found; ``enumerated_argv`` the one-selector-per-node form when
    ``argv`` is shorter than it (else None: ``argv`` is that form). ``exact`` is True when a manifest
    proved that the arguments select the nodes and nothing else.
    """

    argv: tuple[str, ...]
    enumerated_argv: tuple[str, ...] | None
    exact: bool


def select_exactly(
    unique_ids: Sequence[str],
    manifest: Manifest,
    command: str = "build",
    *,
    original_select: object = None,
) -> ExactSelection:
    """The shortest ``--select [--exclude]`` arguments proven to make ``dbt <command>`` pick exactly
    ``unique_ids``, under ``--indirect-selection empty`` (no test joins unless it is listed).

    The rerun of a failed step uses it for the nodes dbt retry would rerun; anything else that needs
    "these nodes, no more" (e.g. the node tasks a user cleared in Airflow) can call it with its own
    set. ``original_select`` (a run's ``args.select``) unlocks the ``fqn:<root>+,tag:<tag>`` form when it
    is a single ``tag:`` selector. Raises ``MismatchedArtifactsError`` when a node is not in the
    manifest and ``AmbiguousSelectionError`` when no selector can single a node out.
    """
    unique_ids = tuple(dict.fromkeys(unique_ids))
    if not unique_ids:
        raise ValueError("select_exactly needs at least one unique_id (an empty --select selects everything)")
    selection, collisions = exact_selection_with_collisions(unique_ids, manifest, command)
    compact = compact_selection(
        unique_ids,
        manifest,
        command,
        dict(zip(unique_ids, selection.selectors, strict=True)),
        collisions,
        lambda others: exact_selection(others, manifest, command).selectors,
        original_select=original_select,
    )
    enumerated = ("--select", *selection.selectors)
    if compact is not None and _length(compact.argv()) < _length(enumerated):
        return ExactSelection(tuple(compact.argv()), enumerated, selection.exact)
    return ExactSelection(enumerated, None, selection.exact)


def plan_job_rerun(
    steps: Sequence[JobStep],
    *,
    statuses: Iterable[str] | None = None,
    warn_error: bool = False,
) -> JobRerun | NothingToRerun:
    """Rerun a job from its first unsuccessful step, like dbt Cloud's rerun-from-failure.

    The failed step is retried like ``dbt retry`` when its artifacts allow (a dbt command retry
    supports, with run_results); otherwise its original command runs again in full. Every later step
    runs as it was. A job whose steps all succeeded has nothing to rerun.
    """
    failed_index = next((index for index, step in enumerate(steps) if not step.succeeded), None)
    if failed_index is None:
        return NothingToRerun(f"all {len(steps)} step(s) succeeded")
    failed = steps[failed_index]
    later = tuple(DbtCommand.parse(step.command) for step in steps[failed_index + 1 :])
    rerun: StepRerun | NothingToRerun | None = None
    if failed.run_results is not None and failed.run_results.command in RETRYABLE_COMMANDS:
        rerun = plan_step_rerun(failed.run_results, failed.manifest, statuses=statuses, warn_error=warn_error)
    if isinstance(rerun, StepRerun):
        return JobRerun((rerun.command, *later), failed_index, rerun, rerun.exact)
    if isinstance(rerun, NothingToRerun):
        # The step failed outside any node (e.g. an on-run-end hook): dbt retry has no node to rerun.
        if not later:
            return NothingToRerun(f"step {failed_index + 1} failed but {rerun.reason}; no later step")
        return JobRerun(later, failed_index, None, True)
    return JobRerun((DbtCommand.parse(failed.command), *later), failed_index, None, True)


def _length(arguments: Sequence[str]) -> int:
    return len(shlex.join(arguments))


def _run_operation_arguments(run_results: RunResults) -> list[str]:
    macro = run_results.args.get("macro")
    if not isinstance(macro, str):
        raise UnsupportedCommandError(f"{run_results.source}: run-operation without 'args.macro'")
    macro_args = run_results.args.get("args") or {}
    return [macro, "--args", json.dumps(macro_args, default=str)] if macro_args else [macro]
