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
from dbt_cloud_local.api.query import (
    Paging,
    known_parameters,
    name_filter,
    query_bool,
    query_ints,
    query_list,
    query_state,
)
from dbt_cloud_local.api.requests import TriggerRunRequest
from dbt_cloud_local.api.run_responses import serialize_run
from dbt_cloud_local.model.env_vars import job_scope
from dbt_cloud_local.model.fields import FieldError, shown
from dbt_cloud_local.model.job_definition import definition_of
from dbt_cloud_local.model.resources import Job
from dbt_cloud_local.model.statuses import ERROR, TERMINAL
from dbt_cloud_local.store.run_rows import RunFilter

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


#: The query parameters of ``List Jobs`` (the spec's), every one of them honoured.
JOB_LIST_PARAMETERS = frozenset(
    {"dbt_version__in", "environment_id", "include_related", "is_fusion_ready", "is_system", "limit",
     "name__icontains", "offset", "order_by", "pk", "project_id", "project_id__in", "state",
     "triggers_schedule"}
)  # fmt: skip
#: ``include_related`` values the job routes take (the spec's); ``environment`` and
#: ``fusion_readiness`` are always in a job, the others are added when asked.
JOB_RELATED = frozenset(
    {"environment", "custom_environment_variables", "most_recent_run", "most_recent_completed_run",
     "fusion_readiness"}
)  # fmt: skip


async def job_related(request: Request) -> frozenset[str]:
    values = frozenset(query_list(request, "include_related"))
    unknown = sorted(values - JOB_RELATED)
    if unknown:
        raise ApiError(
            400,
            f"Unknown include_related value {shown(unknown[0], 40)} for jobs",
            f"Fix: use some of {', '.join(sorted(JOB_RELATED))}",
        )
    return values


JobRelated = Annotated[frozenset[str], Depends(job_related)]


def _related(ctx: ServerContext, job: Job, related: frozenset[str], base_url: str) -> dict[str, Any]:
    """What ``include_related`` adds to a job: its latest run (and latest finished one), its variables."""
    extra: dict[str, Any] = {}
    if {"most_recent_run", "most_recent_completed_run"} & related:
        runs, _ = ctx.store.list_runs(
            account_id=job.account_id,
            filters=RunFilter(job_ids=frozenset({job.id})),
            order_by="-id",
            limit=100,
        )
        if "most_recent_run" in related:
            extra["most_recent_run"] = serialize_run(ctx, runs[0], set(), base_url) if runs else None
        if "most_recent_completed_run" in related:
            done = next((run for run in runs if run["status"] in TERMINAL), None)
            extra["most_recent_completed_run"] = serialize_run(ctx, done, set(), base_url) if done else None
    if "custom_environment_variables" in related:
        extra["custom_environment_variables"] = [
            serializers.env_var_value(ctx.config, job.project_id, job.account_id, row)
            for row in ctx.store.env_vars(job.project_id)
            if row["environment_id"] == job_scope(job.id)
        ]
    return extra


@router.get("/api/v2/accounts/{account_id}/jobs/")
def list_jobs(
    request: Request, account: PathAccount, page: Paging, related: JobRelated, ctx: Context, base_url: BaseUrl
) -> dict[str, Any]:
    """
    Active jobs by default, as dbt Cloud lists them; ``state`` 2 (``deleted``) lists the deleted ones,
    ``all`` both. Every filter the spec documents is honoured; an unknown or malformed parameter is
    refused (400 naming it). Local jobs run dbt Core: none is Fusion-ready, none is a system job.
    """
    known_parameters(request, JOB_LIST_PARAMETERS, account.id, "the jobs list")
    ids = query_ints(request, "pk")
    project_ids = query_ints(request, "project_id", "project_id__in")
    environment_ids = query_ints(request, "environment_id")
    states = query_state(request, "active")
    versions = set(query_list(request, "dbt_version__in"))
    scheduled = query_bool(request, "triggers_schedule")
    fusion_ready = query_bool(request, "is_fusion_ready")
    system = query_bool(request, "is_system")
    needle = name_filter(request)
    order_by = request.query_params.get("order_by") or "id"
    if order_by.lstrip("-") not in JOB_ORDER_FIELDS:
        raise ApiError(400, f"Cannot order jobs by {shown(order_by)}; use one of {sorted(JOB_ORDER_FIELDS)}")
    found = [
        job
        for job in ctx.jobs.values()
        if job.account_id == account.id
        and job.state in states
        and (ids is None or job.id in ids)
        and (project_ids is None or job.project_id in project_ids)
        and (environment_ids is None or job.environment_id in environment_ids)
        and (needle is None or needle in job.name.lower())
        and (not versions or _dbt_version(ctx, job) in versions)
        and (scheduled is None or definition_of(job)["triggers"]["schedule"] == scheduled)
        and not fusion_ready  # none is Fusion-ready: is_fusion_ready=true keeps none
        and not system  # none is a system job
    ]
    field = order_by.lstrip("-")
    found.sort(key=lambda job: (getattr(job, field) or "", job.id), reverse=order_by.startswith("-"))
    items = [
        serializers.job(job, ctx.config, ctx.store.count_runs_for_job(job.id, ERROR))
        | _related(ctx, job, related, base_url)
        for job in page.of(found)
    ]
    filters = {
        "account_id": account.id,
        "pk": sorted(ids) if ids is not None else None,
        "project_id__in": sorted(project_ids) if project_ids is not None else None,
        "environment_id": sorted(environment_ids) if environment_ids is not None else None,
        "dbt_version__in": sorted(versions) or None,
        "state": request.query_params.get("state") or "active",
        "triggers_schedule": scheduled,
        "is_fusion_ready": fusion_ready,
        "is_system": system,
        "name__icontains": request.query_params.get("name__icontains"),
        "include_related": sorted(related) or None,
    }
    return list_envelope(
        items, total=len(found), limit=page.limit, offset=page.offset, filters=filters, order_by=order_by
    )


def _dbt_version(ctx: ServerContext, job: Job) -> str:
    """The job's dbt version (its own override, else its environment's), as ``raw_dbt_version``."""
    return definition_of(job)["dbt_version"] or ctx.config.environments[job.environment_id].dbt_version


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
def get_job(job: ActiveJob, related: JobRelated, ctx: Context, base_url: BaseUrl) -> dict[str, Any]:
    """The provider's ``get_job`` omits the trailing slash: ``app.TrailingSlashOptional`` serves it."""
    response = _job_response(ctx, job)
    return {**response, "data": response["data"] | _related(ctx, job, related, base_url)}


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
