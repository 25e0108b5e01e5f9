"""
Jobs (v2): list, create, update, delete (dbt Cloud's soft delete), and the routes that start a job's
runs (``/run/``, ``/rerun/``). A job's fields are checked by the model's definition rules before
anything is stored; a refusal names the field (``Invalid job field settings.threads: ...``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.body import JsonBody
from dbt_cloud_local.api.dependencies import (
    ActiveJob,
    BaseUrl,
    Context,
    PathAccount,
    ServerContext,
    authenticated,
)
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.errors import ApiError, invalid_field
from dbt_cloud_local.api.query import Paging, as_int, name_filter, query_int, query_list
from dbt_cloud_local.api.requests import TriggerRunRequest
from dbt_cloud_local.api.run_responses import serialize_run
from dbt_cloud_local.model.fields import FieldError, shown
from dbt_cloud_local.model.job_definition import ACTIVE
from dbt_cloud_local.model.resources import Job
from dbt_cloud_local.model.statuses import ERROR

router = APIRouter(dependencies=[Depends(authenticated)])

JOB_ORDER_FIELDS = frozenset({"id", "name", "created_at", "updated_at"})


def _job_response(ctx: ServerContext, job: Job) -> dict[str, Any]:
    return envelope(serializers.job(job, ctx.config, ctx.store.count_runs_for_job(job.id, ERROR)))


async def job_fields(body: JsonBody) -> dict[str, Any]:
    """A job create or update: a JSON object of job fields (checked by the job repository)."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "The request body must be a JSON object of job fields",
            'Fix: send e.g. {"name": "Nightly", "environment_id": 1, "execute_steps": ["dbt build"]}',
        )
    return body


JobFields = Annotated[dict[str, Any], Depends(job_fields)]


@router.get("/api/v2/accounts/{account_id}/jobs/")
def list_jobs(request: Request, account: PathAccount, page: Paging, ctx: Context) -> dict[str, Any]:
    """Active jobs by default, as dbt Cloud lists them; ``state=2`` lists the deleted ones."""
    project_id = query_int(request, "project_id")
    project_ids = {as_int(value, "project_id__in") for value in query_list(request, "project_id__in")}
    environment_id = query_int(request, "environment_id")
    state = query_int(request, "state", ACTIVE)
    needle = name_filter(request)
    order_by = request.query_params.get("order_by") or "id"
    if order_by.lstrip("-") not in JOB_ORDER_FIELDS:
        raise ApiError(400, f"Cannot order jobs by {shown(order_by)}; use one of {sorted(JOB_ORDER_FIELDS)}")
    found = [
        job
        for job in ctx.jobs.values()
        if job.account_id == account.id
        and job.state == state
        and (project_id is None or job.project_id == project_id)
        and (not project_ids or job.project_id in project_ids)
        and (environment_id is None or job.environment_id == environment_id)
        and (needle is None or needle in job.name.lower())
    ]
    field = order_by.lstrip("-")
    found.sort(key=lambda job: (getattr(job, field) or "", job.id), reverse=order_by.startswith("-"))
    items = [
        serializers.job(job, ctx.config, ctx.store.count_runs_for_job(job.id, ERROR))
        for job in page.of(found)
    ]
    filters = {
        "account_id": account.id,
        "project_id": project_id,
        "project_id__in": sorted(project_ids) or None,
        "environment_id": environment_id,
        "state": state,
        "name__icontains": request.query_params.get("name__icontains"),
    }
    return list_envelope(
        items, total=len(found), limit=page.limit, offset=page.offset, filters=filters, order_by=order_by
    )


@router.post("/api/v2/accounts/{account_id}/jobs/")
def create_job(account: PathAccount, body: JobFields, ctx: Context) -> dict[str, Any]:
    """Create a job (``HumanReadableJobDefinitionRequest``); every field is checked before it is stored."""
    try:
        job = ctx.jobs.create(account.id, body)
    except FieldError as exc:
        raise invalid_field(exc, "job") from None
    return _job_response(ctx, job)


@router.post("/api/v2/accounts/{account_id}/jobs/{job_id}/")
def update_job(job: ActiveJob, body: JobFields, ctx: Context) -> dict[str, Any]:
    """Update a job: given fields replace the job's (nested objects key by key); ``state: 2`` deletes it."""
    if body.get("id") is not None and body["id"] != job.id:
        raise ApiError(
            400,
            f"Invalid job field id: {shown(body['id'])} is not the job {job.id} of the URL",
            "Fix: send the id of the URL, or leave id out",
        )
    try:
        updated = ctx.jobs.update(job, body)
    except FieldError as exc:
        raise invalid_field(exc, "job") from None
    return _job_response(ctx, updated)


@router.delete("/api/v2/accounts/{account_id}/jobs/{job_id}/")
def delete_job(job: ActiveJob, ctx: Context) -> dict[str, Any]:
    """
    Delete a job the way dbt Cloud does: its state becomes 2, it leaves the job list and cannot be
    triggered, its runs stay. The spec documents a bare 204; dbt Cloud answers 200 with the deleted
    job (state 2) in the envelope, and so do we (clients such as dbt-jobs-as-code accept both).
    """
    return _job_response(ctx, ctx.jobs.delete(job))


@router.get("/api/v2/accounts/{account_id}/jobs/{job_id}/")
def get_job(job: ActiveJob, ctx: Context) -> dict[str, Any]:
    """The provider's ``get_job`` omits the trailing slash: ``app.TrailingSlashOptional`` serves it."""
    return _job_response(ctx, job)


@router.post("/api/v2/accounts/{account_id}/jobs/{job_id}/run/")
def trigger_run(
    job: ActiveJob,
    run_request: Annotated[TriggerRunRequest, TriggerRunRequest.dependency()],
    ctx: Context,
    base_url: BaseUrl,
) -> dict[str, Any]:
    run = ctx.runner.trigger(job, run_request.overrides(), run_request.steps_override)
    return envelope(serialize_run(ctx, run, {"trigger", "job"}, base_url))


@router.post("/api/v2/accounts/{account_id}/jobs/{job_id}/rerun/")
def rerun_job(job: ActiveJob, ctx: Context, base_url: BaseUrl) -> dict[str, Any]:
    run = ctx.runner.rerun(job)
    return envelope(serialize_run(ctx, run, {"trigger", "job"}, base_url))
