"""
The local server's own routes, outside dbt Cloud's API: ``/_local/health`` (open: container
healthchecks) and ``/_local/faults``, the fault injection settings. Faults change the whole server, so
they need a token valid for every account.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local import __version__
from dbt_cloud_local.api.body import JsonBody
from dbt_cloud_local.api.dependencies import Granted
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.faults import FaultInjector, parse_fault_settings

router = APIRouter()


async def every_account(grant: Granted) -> None:
    if grant.accounts is not None:
        raise ApiError(
            403,
            "Fault injection affects every account; this token is limited to some accounts.",
            "Fix: use a token valid for every account (a plain string under `api_tokens`).",
        )


async def fault_injector(request: Request) -> FaultInjector:
    return request.app.state.faults


Faults = Annotated[FaultInjector, Depends(fault_injector)]
faults_router = APIRouter(dependencies=[Depends(every_account)])


@router.get("/_local/health", include_in_schema=False)
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@faults_router.get("/_local/faults", include_in_schema=False)
def get_faults(faults: Faults) -> dict[str, Any]:
    return {"data": faults.settings.as_dict(), "injected": faults.injected}


@faults_router.put("/_local/faults", include_in_schema=False)
def put_faults(raw: JsonBody, faults: Faults) -> dict[str, Any]:
    """Replace the fault settings (same shape as the config's ``faults:`` section)."""
    try:
        settings = parse_fault_settings(raw if isinstance(raw, dict) else {"invalid": raw})
    except ValueError as exc:
        raise ApiError(400, f"Invalid fault settings: {exc}") from None
    faults.update(settings)
    return {"data": settings.as_dict(), "injected": 0}


@faults_router.delete("/_local/faults", include_in_schema=False)
def clear_faults(faults: Faults) -> dict[str, Any]:
    faults.update(parse_fault_settings({}))
    return {"data": faults.settings.as_dict(), "injected": 0}


router.include_router(faults_router)
