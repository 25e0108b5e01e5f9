"""
Users (v2 and v3). The local dbt Cloud has no accounts of people: its one user is whoever holds its
API tokens (id 1), with a developer license and the account admin permission in every account the
token may use, which is what a token grants here. Changing a user is refused (``api.unsupported``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import Context, Granted, Id, PathAccount, authenticated
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import Paging

router = APIRouter(dependencies=[Depends(authenticated)])


def _the_user(user_id: int) -> None:
    if user_id != serializers.LOCAL_USER_ID:
        raise ApiError(
            404,
            f"User {user_id} not found",
            f"The local dbt Cloud has one user, the holder of its API tokens: id {serializers.LOCAL_USER_ID}",
        )


@router.get("/api/v2/accounts/{account_id}/users/")
@router.get("/api/v3/accounts/{account_id}/users/")
def list_users(account: PathAccount, grant: Granted, page: Paging, ctx: Context) -> dict[str, Any]:
    items = [serializers.user_v2(grant.visible(ctx.config))]
    return list_envelope(
        page.of(items), total=1, limit=page.limit, offset=page.offset, filters={"account_id": account.id},
        order_by="id",
    )  # fmt: skip


@router.get("/api/v2/users/{user_id}/")
def get_user(user_id: Id, grant: Granted, ctx: Context) -> dict[str, Any]:
    _the_user(user_id)
    return envelope(serializers.user_v2(grant.visible(ctx.config)))


@router.get("/api/v3/accounts/{account_id}/users/{user_id}/")
def get_account_user(account: PathAccount, user_id: Id) -> dict[str, Any]:
    _the_user(user_id)
    return {**envelope(serializers.account_user(account)), "extra": None, "error_code": None}
