"""
Runs (v2): list and get (what the provider polls), cancel, and dbt Cloud's run-level retry.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local.api.dependencies import BaseUrl, Context, PathAccount, PathRun, authenticated
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import Include, Paging, as_int, query_int, query_list
from dbt_cloud_local.api.run_responses import serialize_run
from dbt_cloud_local.model.statuses import STATUS_HUMANIZED
from dbt_cloud_local.runs.plan import RetryRefused, failure_details

router = APIRouter(dependencies=[Depends(authenticated)])


@router.get("/api/v2/accounts/{account_id}/runs/")
def list_runs(
    request: Request, account: PathAccount, page: Paging, include: Include, ctx: Context, base_url: BaseUrl
) -> dict[str, Any]:
    statuses = [as_int(value, "status__in") for value in query_list(request, "status__in")]
    status = query_int(request, "status")
    if status is not None:
        statuses.append(status)
    unknown = [value for value in statuses if value not in STATUS_HUMANIZED]
    if unknown:
        raise ApiError(400, f"Unknown run status {unknown[0]}; use 1, 2, 3, 10, 20 or 30")
    order_by = request.query_params.get("order_by") or "id"
    job_id = query_int(request, "job_definition_id")
    project_id = query_int(request, "project_id")
    environment_id = query_int(request, "environment_id")
    try:
        runs, total = ctx.store.list_runs(
            account_id=account.id,
            job_id=job_id,
            project_id=project_id,
            environment_id=environment_id,
            statuses=statuses or None,
            order_by=order_by,
            limit=page.limit,
            offset=page.offset,
        )
    except ValueError as exc:
        raise ApiError(
            400, str(exc), "order_by accepts id, created_at, finished_at, updated_at, status"
        ) from None
    steps = ctx.store.steps_for_runs([run["id"] for run in runs]) if "run_steps" in include else {}
    latest: dict[int, int | None] = {}
    items = [
        serialize_run(ctx, run, include, base_url, steps=steps.get(run["id"]), latest=latest) for run in runs
    ]
    filters = {
        "account_id": account.id,
        "job_definition_id": job_id,
        "project_id": project_id,
        "environment_id": environment_id,
        "status__in": statuses or None,
        "include_related": sorted(include) or None,
    }
    return list_envelope(
        items, total=total, limit=page.limit, offset=page.offset, filters=filters, order_by=order_by
    )


@router.get("/api/v2/accounts/{account_id}/runs/{run_id}/")
def get_run(run: PathRun, include: Include, ctx: Context, base_url: BaseUrl) -> dict[str, Any]:
    return envelope(serialize_run(ctx, run, include, base_url))


@router.post("/api/v2/accounts/{account_id}/runs/{run_id}/cancel/")
def cancel_run(run: PathRun, ctx: Context, base_url: BaseUrl) -> dict[str, Any]:
    """Cancel a run. Completed runs are returned unchanged (cancelling is idempotent)."""
    cancelled = ctx.runner.cancel(run["id"])
    return envelope(serialize_run(ctx, cancelled, {"trigger", "job"}, base_url))


@router.get("/api/v2/accounts/{account_id}/runs/{run_id}/retry/")
def get_run_failure_details(run: PathRun, ctx: Context) -> dict[str, Any]:
    """``RunFailureDetails``: the step that failed and the planned steps it skipped (null and [] for a
    run without a failed step)."""
    record = ctx.store.run_record(run["id"])
    assert record is not None
    failed, skipped = failure_details(record, ctx.store.step_records(run["id"]))
    return envelope({"failed_step": failed, "skipped_steps": skipped})


@router.post("/api/v2/accounts/{account_id}/runs/{run_id}/retry/")
def retry_run(run: PathRun, account: PathAccount, ctx: Context, base_url: BaseUrl) -> dict[str, Any]:
    """dbt Cloud's run-level retry: a failed run that is its job's latest and has run results starts
    a new run from its failed step (``dbt retry``); anything else is refused with the reason (400)."""
    if ctx.jobs.find(account.id, run["job_id"]) is None:
        raise ApiError(
            400,
            f"Run {run['id']} cannot be retried: its job {run['job_id']} was deleted "
            "or is no longer configured",
        )
    try:
        retried = ctx.runner.retry(run["id"])
    except RetryRefused as exc:
        raise ApiError(400, exc.refusal.message, exc.refusal.reason) from None
    return envelope(serialize_run(ctx, retried, {"trigger", "job"}, base_url))
