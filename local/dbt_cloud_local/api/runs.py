"""
Runs (v2): list and get (what the provider polls), cancel, and dbt Cloud's run-level retry.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local.api.dependencies import BaseUrl, Context, PathAccount, PathRun, authenticated
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import (
    Include,
    Paging,
    known_parameters,
    query_bool,
    query_int,
    query_ints,
    query_list,
    query_range,
    query_state,
)
from dbt_cloud_local.api.run_responses import serialize_run
from dbt_cloud_local.model.statuses import STATUS_HUMANIZED
from dbt_cloud_local.runs.plan import RetryRefused, failure_details
from dbt_cloud_local.store.run_rows import RunFilter

router = APIRouter(dependencies=[Depends(authenticated)])


#: The query parameters of ``List Runs`` (the spec's), every one of them honoured.
RUN_LIST_PARAMETERS = frozenset(
    {"created_at__range", "dbt_version", "dbt_version__in", "deferring_run_id", "environment_id",
     "finished_at__range", "has_docs_generated", "has_sources_generated", "id__gt", "include_related",
     "job_definition_id", "limit", "offset", "order_by", "pk", "pk__in", "project_id", "project_id__in",
     "state", "status", "status__in"}
)  # fmt: skip


def _environments_running(ctx: Context, account_id: int, versions: set[str]) -> frozenset[int]:
    """The account's environments on one of the dbt ``versions`` (a run's ``dbt_version`` is its
    environment's)."""
    return frozenset(
        env.id
        for env in ctx.config.environments.values()
        if env.account_id == account_id and env.dbt_version in versions
    )


def run_filter(request: Request, account_id: int, ctx: Context) -> tuple[RunFilter, dict[str, Any]]:
    """The runs list's filters from its query, and the filters to echo in ``extra.filters``."""
    known_parameters(request, RUN_LIST_PARAMETERS, account_id, "the runs list")
    statuses = query_ints(request, "status", "status__in")
    unknown = sorted((statuses or frozenset()) - STATUS_HUMANIZED.keys())
    if unknown:
        raise ApiError(400, f"Unknown run status {unknown[0]}; use 1, 2, 3, 10, 20 or 30")
    environment_ids = query_ints(request, "environment_id")
    versions = set(query_list(request, "dbt_version__in"))
    if request.query_params.get("dbt_version"):
        versions.add(request.query_params["dbt_version"])
    if versions:
        running = _environments_running(ctx, account_id, versions)
        environment_ids = running if environment_ids is None else environment_ids & running
    deferring = query_int(request, "deferring_run_id")
    id_above = query_int(request, "id__gt")
    filters = RunFilter(
        ids=query_ints(request, "pk", "pk__in"),
        id_above=id_above,
        job_ids=query_ints(request, "job_definition_id"),
        project_ids=query_ints(request, "project_id", "project_id__in"),
        environment_ids=environment_ids,
        statuses=statuses,
        created=query_range(request, "created_at__range"),
        finished=query_range(request, "finished_at__range"),
        has_docs_generated=query_bool(request, "has_docs_generated"),
        has_sources_generated=query_bool(request, "has_sources_generated"),
        # No local run defers to another, and none is deleted (runs have no soft delete here).
        nothing=deferring is not None or 1 not in query_state(request, "all"),
    )
    echoed = {
        "account_id": account_id,
        "pk__in": sorted(filters.ids) if filters.ids is not None else None,
        "id__gt": id_above,
        "job_definition_id__in": sorted(filters.job_ids) if filters.job_ids is not None else None,
        "project_id__in": sorted(filters.project_ids) if filters.project_ids is not None else None,
        "environment_id__in": sorted(environment_ids) if environment_ids is not None else None,
        "dbt_version__in": sorted(versions) or None,
        "status__in": sorted(statuses) if statuses is not None else None,
        "created_at__range": list(filters.created) if filters.created else None,
        "finished_at__range": list(filters.finished) if filters.finished else None,
        "has_docs_generated": filters.has_docs_generated,
        "has_sources_generated": filters.has_sources_generated,
        "deferring_run_id": deferring,
        "state": request.query_params.get("state"),
    }
    return filters, echoed


@router.get("/api/v2/accounts/{account_id}/runs/")
def list_runs(
    request: Request, account: PathAccount, page: Paging, include: Include, ctx: Context, base_url: BaseUrl
) -> dict[str, Any]:
    """
    The account's runs, filtered as dbt Cloud's ``List Runs`` documents (``finished_at__range`` and
    ``created_at__range`` as a JSON pair, ``status__in``, ``pk__in``, ``id__gt``...), ordered by
    ``order_by`` (``id``, ``created_at``, ``finished_at``, ``updated_at``, ``status``; ``-`` reverses).
    ``extra.pagination.total_count`` counts every run the filters keep. An unknown or malformed
    parameter is refused (400 naming it).
    """
    filters, echoed = run_filter(request, account.id, ctx)
    order_by = request.query_params.get("order_by") or "id"
    try:
        runs, total = ctx.store.list_runs(
            account_id=account.id, filters=filters, order_by=order_by, limit=page.limit, offset=page.offset
        )
    except ValueError as exc:
        raise ApiError(
            400,
            str(exc),
            "Fix: order_by accepts id, created_at, finished_at, updated_at, status (- reverses)",
        ) from None
    steps = ctx.store.steps_for_runs([run["id"] for run in runs]) if "run_steps" in include else {}
    latest: dict[int, int | None] = {}
    items = [
        serialize_run(ctx, run, include, base_url, steps=steps.get(run["id"]), latest=latest) for run in runs
    ]
    echoed["include_related"] = sorted(include) or None
    return list_envelope(
        items, total=total, limit=page.limit, offset=page.offset, filters=echoed, order_by=order_by
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
