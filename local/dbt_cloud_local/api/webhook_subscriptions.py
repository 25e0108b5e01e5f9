"""
dbt Cloud's v3 webhook subscription routes (official OpenAPI v3 spec, "Webhooks"):

* ``GET    /api/v3/accounts/{account_id}/webhooks/subscriptions``        list (``limit``/``offset``)
* ``POST   /api/v3/accounts/{account_id}/webhooks/subscriptions``        create (201, ``hmac_secret``)
* ``GET    /api/v3/accounts/{account_id}/webhooks/subscription/{id}``    get
* ``PUT    /api/v3/accounts/{account_id}/webhooks/subscription/{id}``    update
* ``DELETE /api/v3/accounts/{account_id}/webhooks/subscription/{id}``    delete
* ``GET    /api/v3/accounts/{account_id}/webhooks/subscription/{id}/test`` send a signed test event

Like dbt Cloud, only the create response carries ``hmac_secret``: keep it then (in Airflow, as the
password of the ``dbt_cloud_webhook`` connection). Bodies follow ``SubscriptionRequest``: ``name``,
``client_url`` (http or https), ``event_types`` (non-empty, from the three job run events) and
``active`` are required on create; ``description`` and ``job_ids`` (empty: every job) are optional.
An update may send only the fields it changes (``requests.SubscriptionCreate`` and
``SubscriptionUpdate``). Delivery is the ``webhooks`` package's job.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from dbt_cloud_local.api.dependencies import Context, PathAccount, authenticated
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import Paging
from dbt_cloud_local.api.requests import SubscriptionCreate, SubscriptionUpdate
from dbt_cloud_local.webhooks import sending

router = APIRouter(dependencies=[Depends(authenticated)])

_BASE = "/api/v3/accounts/{account_id}/webhooks"


def _epoch_micros(value: str | None) -> str | None:
    """dbt Cloud shows subscription times as microseconds since the epoch, in a string."""
    return None if value is None else str(int(datetime.fromisoformat(value).timestamp() * 1_000_000))


def serialize(row: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row["id"],
        "account_identifier": f"act_{row['account_id']}",
        "name": row["name"],
        "description": row["description"],
        "job_ids": row["job_ids"],
        "event_types": row["event_types"],
        "client_url": row["client_url"],
        "active": row["active"],
        "created_at": _epoch_micros(row["created_at"]),
        "updated_at": _epoch_micros(row["updated_at"]),
        "http_status_code": row["http_status_code"],
        "dispatched_at": _epoch_micros(row["dispatched_at"]),
        "deactivate_reason": None,
        "account_id": row["account_id"],
    }
    if with_secret:
        data["hmac_secret"] = row["hmac_secret"]
    return data


def _envelope(data: Any, code: int = 200) -> dict[str, Any]:
    return {"data": data, "status": {"code": code}}


def subscription(subscription_id: str, account: PathAccount, ctx: Context) -> dict[str, Any]:
    """The account's subscription ``subscription_id`` (404 otherwise)."""
    row = ctx.store.get_subscription(subscription_id)
    if row is None or row["account_id"] != account.id:
        raise ApiError(
            404, f"Webhook subscription {subscription_id[:40]!r} not found in account {account.id}"
        )
    return row


Subscription = Annotated[dict[str, Any], Depends(subscription)]


@router.get(f"{_BASE}/subscriptions")
def list_subscriptions(account: PathAccount, page: Paging, ctx: Context) -> dict[str, Any]:
    rows = ctx.store.list_subscriptions(account.id)
    items = [serialize(row) for row in page.of(rows)]
    return {
        "data": items,
        "status": {"code": 200},
        "extra": {
            "pagination": {"total_count": len(rows), "count": len(items)},
            "filters": {"offset": page.offset, "limit": page.limit},
        },
    }


@router.post(f"{_BASE}/subscriptions")
def create_subscription(
    account: PathAccount, body: Annotated[SubscriptionCreate, SubscriptionCreate.dependency()], ctx: Context
) -> JSONResponse:
    subscription_id = sending.new_id("wsu_")
    ctx.store.create_subscription(
        subscription_id, account.id, {**body.changes(), "hmac_secret": sending.new_secret()}
    )
    row = ctx.store.get_subscription(subscription_id)
    assert row is not None
    return JSONResponse(_envelope(serialize(row, with_secret=True), 201), status_code=201)


@router.get(f"{_BASE}/subscription/{{subscription_id}}")
def get_subscription(row: Subscription) -> dict[str, Any]:
    return _envelope(serialize(row))


@router.put(f"{_BASE}/subscription/{{subscription_id}}")
def update_subscription(
    row: Subscription, body: Annotated[SubscriptionUpdate, SubscriptionUpdate.dependency()], ctx: Context
) -> dict[str, Any]:
    ctx.store.update_subscription(row["id"], **body.changes())
    updated = ctx.store.get_subscription(row["id"])
    assert updated is not None
    return _envelope(serialize(updated))


@router.delete(f"{_BASE}/subscription/{{subscription_id}}")
def delete_subscription(row: Subscription, ctx: Context) -> dict[str, Any]:
    ctx.store.delete_subscription(row["id"])
    return {"data": {"id": row["id"]}, "status": {"code": 200, "is_success": True}}


@router.get(f"{_BASE}/subscription/{{subscription_id}}/test")
def test_subscription(row: Subscription, ctx: Context) -> dict[str, Any]:
    """Send one signed ``test`` event now (one attempt, 10 s timeout) and report the answer."""
    event_id = sending.new_id("wev_")
    body = json.dumps(
        {
            "accountId": row["account_id"],
            "webhooksID": row["id"],
            "eventId": event_id,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "eventType": "test",
            "webhookName": row["name"],
            "data": {},
        }
    ).encode()
    status = sending.post(row["client_url"], body, sending.sign(row["hmac_secret"], body))
    ctx.store.record_dispatch(row["id"], status)
    return _envelope(
        {
            "event_id": event_id,
            "verification_error": None if 200 <= status < 300 else f"HTTP {status or 'no answer'}",
            "verification_status_code": str(status),
        }
    )
