"""Environments (v3, and the v2 routes dbt Cloud keeps for older clients such as dagster-dbt), as
config.yml declares them. Creating, changing or deleting one is refused (``api.unsupported``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import Context, Id, PathAccount, PathProject, authenticated
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import Paging, as_int, name_filter, query_int, query_list
from dbt_cloud_local.model.resources import Environment

router = APIRouter(dependencies=[Depends(authenticated)])


@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/environments/")
def list_environments(request: Request, project: PathProject, page: Paging, ctx: Context) -> dict[str, Any]:
    needle = name_filter(request)
    exact = request.query_params.get("name")
    environments = [
        env
        for env in sorted(ctx.config.environments.values(), key=lambda env: env.id)
        if env.project_id == project.id
        and (needle is None or needle in env.name.lower())
        and (exact is None or env.name == exact)
    ]
    items = [serializers.environment_v3(env, ctx.config) for env in page.of(environments)]
    filters = {
        "account_id": project.account_id,
        "project_id": project.id,
        "name__icontains": request.query_params.get("name__icontains"),
        "name": exact,
    }
    return list_envelope(
        items, total=len(environments), limit=page.limit, offset=page.offset, filters=filters, order_by="id"
    )


@router.get("/api/v3/accounts/{account_id}/environments/")
def list_account_environments(
    request: Request, account: PathAccount, page: Paging, ctx: Context
) -> dict[str, Any]:
    """The account's environments (``project_id`` filters). dbt-jobs-as-code's ``validate --online``
    calls this route; dbt Cloud serves it although the published v3 spec leaves it out."""
    project_id = query_int(request, "project_id")
    environments = [
        env
        for env in sorted(ctx.config.environments.values(), key=lambda env: env.id)
        if env.account_id == account.id and (project_id is None or env.project_id == project_id)
    ]
    items = [serializers.environment_v3(env, ctx.config) for env in page.of(environments)]
    filters = {"account_id": account.id, "project_id": project_id}
    return list_envelope(
        items, total=len(environments), limit=page.limit, offset=page.offset, filters=filters, order_by="id"
    )


@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/environments/{environment_id}/")
def get_environment(project: PathProject, environment_id: Id, ctx: Context) -> dict[str, Any]:
    environment = ctx.config.environments.get(environment_id)
    if environment is None or environment.project_id != project.id:
        raise ApiError(404, f"Environment {environment_id} not found in project {project.id}")
    return envelope(serializers.environment_v3(environment, ctx.config))


def _environment_v2(environment: Environment, ctx: Context) -> dict[str, Any]:
    """The v2 environment with its own variable values and its active jobs."""
    variables = [
        serializers.env_var_value(ctx.config, environment.project_id, environment.account_id, row)
        for row in ctx.store.env_vars(environment.project_id)
        if row["environment_id"] == environment.id
    ]
    jobs = [job for job in ctx.jobs.active(environment.account_id) if job.environment_id == environment.id]
    return serializers.environment_v2_full(environment, ctx.config, variables, jobs)


@router.get("/api/v2/accounts/{account_id}/environments/")
def list_environments_v2(
    request: Request, account: PathAccount, page: Paging, ctx: Context
) -> dict[str, Any]:
    """The account's environments (``project_id``, ``project_id__in``, ``dbt_version`` filter)."""
    project_id = query_int(request, "project_id")
    project_ids = {as_int(value, "project_id__in") for value in query_list(request, "project_id__in")}
    versions = set(query_list(request, "dbt_version__in"))
    if request.query_params.get("dbt_version"):
        versions.add(request.query_params["dbt_version"])
    environments = [
        env
        for env in sorted(ctx.config.environments.values(), key=lambda env: env.id)
        if env.account_id == account.id
        and (project_id is None or env.project_id == project_id)
        and (not project_ids or env.project_id in project_ids)
        and (not versions or env.dbt_version in versions)
    ]
    items = [_environment_v2(env, ctx) for env in page.of(environments)]
    filters = {
        "account_id": account.id,
        "project_id": project_id,
        "project_id__in": sorted(project_ids) or None,
        "dbt_version__in": sorted(versions) or None,
    }
    return list_envelope(
        items, total=len(environments), limit=page.limit, offset=page.offset, filters=filters, order_by="id"
    )


@router.get("/api/v2/accounts/{account_id}/environments/{environment_id}/")
def get_environment_v2(account: PathAccount, environment_id: Id, ctx: Context) -> dict[str, Any]:
    environment = ctx.config.environments.get(environment_id)
    if environment is None or environment.account_id != account.id:
        raise ApiError(404, f"Environment {environment_id} not found in account {account.id}")
    return envelope(_environment_v2(environment, ctx))
