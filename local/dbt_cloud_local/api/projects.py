"""Projects (v3, and the v2 routes dbt Cloud keeps for older clients), as config.yml declares them.
Creating, changing or deleting one is refused (``api.unsupported``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import Context, PathAccount, PathProject, authenticated
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.query import Paging, name_filter

router = APIRouter(dependencies=[Depends(authenticated)])


@router.get("/api/v2/accounts/{account_id}/projects/")
@router.get("/api/v3/accounts/{account_id}/projects/")
def list_projects(request: Request, account: PathAccount, page: Paging, ctx: Context) -> dict[str, Any]:
    needle = name_filter(request)
    projects = [
        project
        for project in sorted(ctx.config.projects.values(), key=lambda project: project.id)
        if project.account_id == account.id and (needle is None or needle in project.name.lower())
    ]
    items = [serializers.project_v3(project, ctx.config) for project in page.of(projects)]
    filters = {"account_id": account.id, "name__icontains": request.query_params.get("name__icontains")}
    return list_envelope(
        items, total=len(projects), limit=page.limit, offset=page.offset, filters=filters, order_by="id"
    )


@router.get("/api/v2/accounts/{account_id}/projects/{project_id}/")
@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/")
def get_project(project: PathProject, ctx: Context) -> dict[str, Any]:
    return envelope(serializers.project_v3(project, ctx.config))
