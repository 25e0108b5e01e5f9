"""Environments (v3), as config.yml declares them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import Context, Id, PathAccount, PathProject, authenticated
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import Paging, name_filter, query_int

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
