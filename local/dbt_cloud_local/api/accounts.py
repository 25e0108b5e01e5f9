"""Accounts (v2 and v3): those the token may use. ``GET /`` is also the provider's ``test_connection``.
Changing an account is refused (``api.unsupported``): accounts come from config.yml."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import Context, Granted, PathAccount, authenticated
from dbt_cloud_local.api.envelopes import envelope, list_envelope

router = APIRouter(dependencies=[Depends(authenticated)])


@router.get("/")
@router.get("/api/v2/accounts/")
@router.get("/api/v3/accounts/")
def list_accounts(grant: Granted, ctx: Context) -> dict[str, Any]:
    """Accounts the token may use; ``GET /`` is also the provider's ``test_connection``."""
    items = [serializers.account(account) for account in grant.visible(ctx.config)]
    return list_envelope(items, total=len(items), limit=100, offset=0, filters={}, order_by="id")


@router.get("/api/v2/accounts/{account_id}/")
def get_account(account: PathAccount) -> dict[str, Any]:
    return envelope(serializers.account(account))
