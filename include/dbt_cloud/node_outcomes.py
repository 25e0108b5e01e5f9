"""How each node task of a dbt Cloud job ends, from the one run's results (pure: no Airflow, no network).

The shared poller (``include.dbt_cloud.node_trigger``) reads each dbt step's ``run_results.json`` once
when the run is over and turns them into :class:`RunResultsSnapshot`; each node task then asks
:func:`node_task_outcome` how *it* ends:

- **success**: its node and every folded test passed (a test's ``warn`` is logged, not failed);
- **failed**: its node, or one of its folded tests, errored or failed (``partial success`` of a
  microbatch model too): the task log names which, with dbt's error line. A retry cannot change a
  finished run, so the task fails without retrying; the fix is a Clear (a new run);
- **skipped**: dbt skipped its node (an upstream node or test failed, or the run stopped before dbt
  got to it). Airflow skips the tasks below it (when an upstream *task* failed, Airflow marks them
  ``upstream_failed`` itself, without running them);
- **missing**: the run succeeded without running the node, so the run did not select it. That is an
  error, never a silent success: the job's selection changed since its stored manifest was made.

A node's outcome is its *last* one across the run's steps (a seed built by ``dbt seed`` and rebuilt by
``dbt build`` ends as ``dbt build`` left it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from include.dbt_cloud.results import NODE_COMMANDS, StepOutcome

#: run_results statuses that fail a node task.
FAILED_STATUSES = frozenset({"error", "fail", "runtime error", "partial success"})
SKIPPED_STATUS = "skipped"
WARN_STATUS = "warn"


@dataclass(frozen=True, slots=True)
class NodeRunResult:
    """A node's last outcome in a run: its status, dbt's error line, and the step that ran it."""

    status: str
    message: str | None
    step: int


@dataclass(frozen=True)
class RunResultsSnapshot:
    """A finished run as the node tasks see it: plain data, shared by every task waiting on it."""

    run_id: int
    #: dbt Cloud's run status (10 success, 20 error, 30 cancelled) and its name (``Success``).
    status: int
    status_humanized: str
    href: str | None
    results: Mapping[str, NodeRunResult]
    #: ``(index, name)`` of the dbt steps that left no run_results.json (stopped before dbt wrote any).
    steps_without_results: tuple[tuple[int, str], ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.status == 10

    @property
    def title(self) -> str:
        return f"dbt Cloud run {self.run_id} ({self.status_humanized})"


@dataclass(frozen=True)
class NodeTaskOutcome:
    """How one node task ends: ``success``, ``failed``, ``skipped`` or ``missing``, and why."""

    state: str
    message: str
    #: One line per node and folded test: status and, for a failure, dbt's error line.
    lines: tuple[str, ...]


def run_results_by_node(steps: Sequence[StepOutcome]) -> dict[str, NodeRunResult]:
    """Each node's last outcome across the run's dbt steps that execute nodes (not docs, compile)."""
    last: dict[str, NodeRunResult] = {}
    for step in steps:
        if step.command not in NODE_COMMANDS:
            continue
        for node in step.nodes:
            last[node.unique_id] = NodeRunResult(node.status, node.message, step.index)
    return last


def node_task_outcome(
    unique_id: str, tests: Iterable[str], snapshot: RunResultsSnapshot, *, is_source: bool = False
) -> NodeTaskOutcome:
    """The outcome of the task for ``unique_id`` with its folded ``tests``, in the finished run."""
    tests = tuple(tests)
    results = snapshot.results
    own = None if is_source else results.get(unique_id)
    subject = _describe(unique_id)
    ran = [uid for uid in ((() if is_source else (unique_id,)) + tests) if uid in results]
    lines = tuple(_line(uid, results[uid]) for uid in ran)
    not_run = [test for test in tests if test not in results]

    if not ran or (not is_source and own is None):
        if snapshot.succeeded:
            return NodeTaskOutcome(
                "missing",
                f"{snapshot.title} has no result for {subject}: the run did not select it. If the job's "
                "selection changed, refresh its stored manifest (`make dbt-manifest`); if you cleared "
                "tasks, their launcher triggered this run for other nodes.",
                lines,
            )
        stopped = "; ".join(f"step {index} ({name})" for index, name in snapshot.steps_without_results)
        return NodeTaskOutcome(
            "skipped",
            f"{snapshot.title} ended before dbt ran {subject}"
            + (f": {stopped} left no results" if stopped else ""),
            lines,
        )

    failures = [uid for uid in ran if results[uid].status in FAILED_STATUSES]
    if failures:
        first = failures[0]
        what = subject if first == unique_id else f"{_describe(first)} (folded into {subject})"
        error = results[first].message or results[first].status
        more = f" (and {len(failures) - 1} more, below)" if len(failures) > 1 else ""
        return NodeTaskOutcome("failed", f"{what} failed in {snapshot.title}: {error}{more}", lines)

    skipped = (
        own.status == SKIPPED_STATUS
        if own is not None
        else all(results[uid].status == SKIPPED_STATUS for uid in ran)
    )
    if skipped:
        return NodeTaskOutcome(
            "skipped",
            f"dbt skipped {subject} in {snapshot.title}: a node or test it depends on failed",
            lines,
        )
    warned = sum(results[uid].status == WARN_STATUS for uid in ran)
    summary = f"{subject} succeeded in {snapshot.title}"
    if tests:
        summary += f", {len(tests) - len(not_run)} of {len(tests)} folded test(s) ran"
    if warned:
        summary += f", {warned} warning(s)"
    if not_run:
        summary += f"; not run: {', '.join(_describe(test) for test in not_run[:3])}"
    return NodeTaskOutcome("success", summary, lines)


def _line(unique_id: str, result: NodeRunResult) -> str:
    line = f"{_describe(unique_id)}: {result.status} (step {result.step})"
    return f"{line}: {result.message}" if result.message and result.status != "success" else line


def _describe(unique_id: str) -> str:
    """``model jaffle_shop.stg_orders``, ``test not_null_orders_order_id``, ``source raw.orders``."""
    parts = unique_id.split(".")
    kind = parts[0]
    if kind == "test" and len(parts) > 3:
        return f"test {parts[2]}"
    if kind == "unit_test" and len(parts) > 3:
        return f"unit test {parts[3]} (on {parts[2]})"
    if kind == "source" and len(parts) > 3:
        return f"source {'.'.join(parts[2:])}"
    return f"{kind} {'.'.join(parts[1:])}"
