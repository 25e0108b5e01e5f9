"""Which nodes ``dbt retry`` would run again, read from the previous run_results.json.

Mirrors dbt-core 1.11 ``dbt/task/retry.py`` (``RetryTask.run``): every result whose status is in
``RETRYABLE_STATUSES`` (error, fail, skipped, runtime error, partial success; ``warn`` too only when
the retry runs with ``--warn-error``), except ``operation.*`` results (on-run-start/end hooks) unless
the previous command was ``run-operation``. "Skipped" needs no graph reasoning: dbt already wrote a
``skipped`` result for every node it skipped because an upstream node (or test) failed, and retry
reruns every skipped result whatever the cause.
"""

from __future__ import annotations

from collections.abc import Iterable

from include.rerun_parser.artifacts import RunResults

#: dbt 1.11 ``RETRYABLE_STATUSES`` (NodeStatus values as written in run_results.json).
DBT_RETRY_STATUSES: frozenset[str] = frozenset(
    {"error", "fail", "skipped", "runtime error", "partial success"}
)
WARN_STATUS = "warn"


def retry_statuses(warn_error: bool = False, statuses: Iterable[str] | None = None) -> frozenset[str]:
    """The statuses to rerun: dbt retry's set (or ``statuses``), plus ``warn`` under ``--warn-error``."""
    chosen = frozenset(statuses) if statuses is not None else DBT_RETRY_STATUSES
    return chosen | {WARN_STATUS} if warn_error else chosen


def unique_ids_to_retry(run_results: RunResults, statuses: frozenset[str]) -> tuple[str, ...]:
    """unique_ids to rerun, in the order dbt reported them, without duplicates."""
    skip_operations = run_results.command != "run-operation"
    chosen: dict[str, None] = {}
    for result in run_results.results:
        if result.status not in statuses:
            continue
        if skip_operations and result.unique_id.startswith("operation."):
            continue
        chosen[result.unique_id] = None
    return tuple(chosen)
