"""
Repositories (v2, and v3 per project): each project's repository is its folder, which every run's
``Clone git repository`` step copies (no git remote; the repository's id is the project's).
Creating or deleting one is refused (``api.unsupported``): projects come from config.yml.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import Context, Id, PathAccount, PathProject, authenticated
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import Paging, as_int, query_int, query_list
from dbt_cloud_local.model.resources import Account, Project

router = APIRouter(dependencies=[Depends(authenticated)])


def _repositories(
    request: Request, account: Account, ctx: Context, project_ids: set[int] | None
) -> tuple[list[Project], dict[str, Any]]:
    wanted = {as_int(value, "project_id__in") for value in query_list(request, "project_id__in")}
    project_id = query_int(request, "project_id")
    projects = [
        project
        for project in sorted(ctx.config.projects.values(), key=lambda project: project.id)
        if project.account_id == account.id
        and (project_ids is None or project.id in project_ids)
        and (not wanted or project.id in wanted)
        and (project_id is None or project.id == project_id)
    ]
    filters = {"account_id": account.id, "project_id": project_id, "project_id__in": sorted(wanted) or None}
    return projects, filters


def _listed(projects: list[Project], page: Paging, filters: dict[str, Any]) -> dict[str, Any]:
    items = [serializers.repository(project) for project in page.of(projects)]
    return list_envelope(
        items, total=len(projects), limit=page.limit, offset=page.offset, filters=filters, order_by="id"
    )


@router.get("/api/v2/accounts/{account_id}/repositories/")
def list_account_repositories(
    request: Request, account: PathAccount, page: Paging, ctx: Context
) -> dict[str, Any]:
    projects, filters = _repositories(request, account, ctx, None)
    return _listed(projects, page, filters)


@router.get("/api/v2/accounts/{account_id}/repositories/{repository_id}/")
def get_account_repository(account: PathAccount, repository_id: Id, ctx: Context) -> dict[str, Any]:
    project = ctx.config.projects.get(repository_id)
    if project is None or project.account_id != account.id:
        raise ApiError(404, f"Repository {repository_id} not found in account {account.id}")
    return envelope(serializers.repository(project))


@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/repositories/")
def list_project_repositories(
    request: Request, account: PathAccount, project: PathProject, page: Paging, ctx: Context
) -> dict[str, Any]:
    projects, filters = _repositories(request, account, ctx, {project.id})
    return _listed(projects, page, filters | {"project_id": project.id})


@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/repositories/{repository_id}/")
def get_project_repository(project: PathProject, repository_id: Id) -> dict[str, Any]:
    if repository_id != project.id:
        raise ApiError(404, f"Repository {repository_id} not found in project {project.id}")
    return envelope(serializers.repository(project))
