"""
What a project connects to, as dbt Cloud's v3 API describes it: connections (per project, and the
account's), credentials (one per environment) and profiles (one per environment, binding the two).
All of it comes from config.yml: every project connects to DuckDB through its own ``profiles.yml``
(the connection's id is the project's; credentials and profiles have the environment's id). Writing
any of them is refused (``api.unsupported``): edit config.yml instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import Context, Id, PathAccount, PathProject, authenticated
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import Paging, name_filter
from dbt_cloud_local.model.resources import Environment, Project

router = APIRouter(dependencies=[Depends(authenticated)])

_PROJECT = "/api/v3/accounts/{account_id}/projects/{project_id}"


def _environments(project: Project, ctx: Context) -> list[Environment]:
    return sorted(
        (env for env in ctx.config.environments.values() if env.project_id == project.id), key=lambda e: e.id
    )


def _environment(project: Project, environment_id: int, ctx: Context, what: str) -> Environment:
    environment = ctx.config.environments.get(environment_id)
    if environment is None or environment.project_id != project.id:
        raise ApiError(404, f"{what} {environment_id} not found in project {project.id}")
    return environment


def _single(items: list[dict[str, Any]], page: Any, filters: dict[str, Any]) -> dict[str, Any]:
    return list_envelope(
        page.of(items), total=len(items), limit=page.limit, offset=page.offset, filters=filters, order_by="id"
    )


@router.get(f"{_PROJECT}/connections/")
def list_project_connections(project: PathProject, page: Paging, ctx: Context) -> dict[str, Any]:
    """The project's one connection (dbt Cloud deprecates these project routes for the account's)."""
    items = [serializers.connection(project, ctx.config)]
    return _single(items, page, {"account_id": project.account_id, "project_id": project.id})


@router.get(f"{_PROJECT}/connections/{{connection_id}}/")
def get_project_connection(project: PathProject, connection_id: Id, ctx: Context) -> dict[str, Any]:
    if connection_id != project.id:
        raise ApiError(404, f"Connection {connection_id} not found in project {project.id}")
    return envelope(serializers.connection(project, ctx.config))


@router.get("/api/v3/accounts/{account_id}/connections/")
def list_account_connections(
    request: Request, account: PathAccount, page: Paging, ctx: Context
) -> dict[str, Any]:
    """The account's connections: one per project (``AccountConnectionList``, data as a list)."""
    needle = name_filter(request)
    projects = sorted(ctx.config.projects.values(), key=lambda project: project.id)
    connections = [
        serializers.account_connection(p, ctx.config) for p in projects if p.account_id == account.id
    ]
    items = [item for item in connections if needle is None or needle in item["name"].lower()]
    filters = {"account_id": account.id, "name__icontains": request.query_params.get("name__icontains")}
    return {**_single(items, page, filters), "error_code": None}


@router.get("/api/v3/accounts/{account_id}/connections/{connection_id}/")
def get_account_connection(account: PathAccount, connection_id: Id, ctx: Context) -> dict[str, Any]:
    project = ctx.config.projects.get(connection_id)
    if project is None or project.account_id != account.id:
        raise ApiError(404, f"Connection {connection_id} not found in account {account.id}")
    return {
        **envelope(serializers.account_connection(project, ctx.config)),
        "extra": None,
        "error_code": None,
    }


@router.get(f"{_PROJECT}/credentials/")
def list_credentials(project: PathProject, page: Paging, ctx: Context) -> dict[str, Any]:
    """The credentials of the project's environments (one each; no secret is ever shown)."""
    items = [serializers.credentials(env) for env in _environments(project, ctx)]
    return _single(items, page, {"account_id": project.account_id, "project_id": project.id})


@router.get(f"{_PROJECT}/credentials/{{credentials_id}}/")
def get_credentials(project: PathProject, credentials_id: Id, ctx: Context) -> dict[str, Any]:
    return envelope(serializers.credentials(_environment(project, credentials_id, ctx, "Credentials")))


@router.get(f"{_PROJECT}/profiles/")
def list_profiles(project: PathProject, page: Paging, ctx: Context) -> dict[str, Any]:
    """The project's profiles: one per environment (``ProfileList``, data as a list)."""
    items = [serializers.profile(env) for env in _environments(project, ctx)]
    filters = {"account_id": project.account_id, "project_id": project.id}
    return {**_single(items, page, filters), "error_code": None}


@router.get(f"{_PROJECT}/profiles/{{profile_id}}/")
def get_profile(project: PathProject, profile_id: Id, ctx: Context) -> dict[str, Any]:
    environment = _environment(project, profile_id, ctx, "Profile")
    return {**envelope(serializers.profile(environment)), "extra": None, "error_code": None}
