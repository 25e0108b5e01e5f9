"""
A run as the API answers it: the serialized run with whether it can be retried (dbt Cloud's
``can_retry`` and ``retry_not_supported_reason``), for the job routes that start runs and the run routes.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import ServerContext
from dbt_cloud_local.model.statuses import ERROR
from dbt_cloud_local.runs.plan import retry_refusal
from dbt_cloud_local.runs.workspace import RunWorkspace


def retry_reason(ctx: ServerContext, run: dict[str, Any], latest: dict[int, int | None]) -> str | None:
    """Why ``run`` cannot be retried (``RetryNotSupportedReasonEnum``), or None when it can.

    ``latest`` caches the most recent run id of each job across the runs of one response."""
    job_id = run["job_id"]
    if job_id not in latest:
        newest = ctx.store.latest_run_for_job(job_id)
        latest[job_id] = newest["id"] if newest else None
    steps = ctx.store.step_records(run["id"]) if run["status"] == ERROR else []
    refusal = retry_refusal(
        run["id"], run["status"], job_id, latest[job_id], steps, RunWorkspace(ctx.data_dir, run["id"])
    )
    return refusal.reason if refusal else None


def serialize_run(
    ctx: ServerContext,
    run: dict[str, Any],
    include: Set[str],
    base_url: str,
    *,
    steps: list[dict[str, Any]] | None = None,
    latest: dict[int, int | None] | None = None,
) -> dict[str, Any]:
    """``run`` with the related objects ``include`` asks for. ``steps`` and ``latest`` let a list
    response read steps and latest runs once for all its runs."""
    if steps is None and "run_steps" in include:
        steps = ctx.store.steps_for_runs([run["id"]])[run["id"]]
    return serializers.run(
        run,
        ctx.config,
        base_url=base_url,
        include=include,
        steps=steps,
        workspace=RunWorkspace(ctx.data_dir, run["id"]),
        retry_reason=retry_reason(ctx, run, {} if latest is None else latest),
    )
