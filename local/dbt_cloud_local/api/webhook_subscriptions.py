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
An update may send only the fields it changes. Delivery is ``webhooks.py``'s job.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from dbt_cloud_local import webhooks
from dbt_cloud_local.api import (
    MAX_INT64,
    ApiError,
    Id,
    ServerContext,
    account_or_404,
    context,
    json_body,
    paging,
)

router = APIRouter()

_BASE = "/api/v3/accounts/{account_id}/webhooks"
MAX_TEXT = 255
MAX_URL = 2048


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


def _text(body: dict[str, Any], key: str, *, required: bool, limit: int = MAX_TEXT) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"`{key}` must be a non-empty string", f"Fix: send {key!r} as text.")
    if len(value) > limit:
        raise ApiError(400, f"`{key}` is longer than {limit} characters", f"Fix: shorten {key!r}.")
    return value


def _client_url(body: dict[str, Any], *, required: bool) -> str | None:
    url = _text(body, "client_url", required=required, limit=MAX_URL)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(
            400,
            f"`client_url` must be an http(s) URL, got {url[:80]!r}",
            "Fix: e.g. https://airflow.example.com/dbt-cloud-webhooks/events",
        )
    return url


def _event_types(body: dict[str, Any], *, required: bool) -> list[str] | None:
    value = body.get("event_types")
    if value is None and not required:
        return None
    known = ", ".join(webhooks.EVENT_TYPES)
    if not isinstance(value, list) or not value:
        raise ApiError(400, "`event_types` must be a non-empty list", f"Fix: choose from {known}.")
    unknown = [item for item in value if item not in webhooks.EVENT_TYPES]
    if unknown:
        raise ApiError(400, f"Unknown event type(s) {unknown!r:.120}", f"Fix: choose from {known}.")
    return list(dict.fromkeys(value))


def _job_ids(body: dict[str, Any]) -> list[int] | None:
    value = body.get("job_ids")
    if value is None:
        return None
    if not isinstance(value, list):
        raise ApiError(400, "`job_ids` must be a list of job ids", "Fix: send [] to listen to every job.")
    ids = []
    for item in value:
        number = int(item) if isinstance(item, str) and item.isdigit() else item
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_INT64:
            raise ApiError(
                400, f"`job_ids` holds {item!r:.40}, not a job id", "Fix: list whole numbers >= 1."
            )
        ids.append(number)
    return list(dict.fromkeys(ids))


def _active(body: dict[str, Any], *, required: bool) -> bool | None:
    value = body.get("active")
    if value is None and not required:
        return None
    if not isinstance(value, bool):
        raise ApiError(400, "`active` must be true or false", 'Fix: send "active": true.')
    return value


async def _fields(request: Request, *, creating: bool) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object", "See SubscriptionRequest in the spec.")
    fields = {
        "name": _text(body, "name", required=creating),
        "description": _text(body, "description", required=False, limit=1024),
        "client_url": _client_url(body, required=creating),
        "event_types": _event_types(body, required=creating),
        "job_ids": _job_ids(body),
        "active": _active(body, required=creating),
    }
    if creating:
        fields["job_ids"] = fields["job_ids"] or []
        fields["description"] = fields["description"] or ""
    return {key: value for key, value in fields.items() if value is not None}


def _subscription_or_404(ctx: ServerContext, account_id: int, subscription_id: str) -> dict[str, Any]:
    account_or_404(ctx, account_id)
    row = ctx.store.get_subscription(subscription_id)
    if row is None or row["account_id"] != account_id:
        raise ApiError(
            404, f"Webhook subscription {subscription_id[:40]!r} not found in account {account_id}"
        )
    return row


@router.get(f"{_BASE}/subscriptions")
def list_subscriptions(request: Request, account_id: Id) -> dict[str, Any]:
    ctx = context(request)
    account_or_404(ctx, account_id)
    limit, offset = paging(request, ctx)
    rows = ctx.store.list_subscriptions(account_id)
    page = [serialize(row) for row in rows[offset : offset + limit]]
    return {
        "data": page,
        "status": {"code": 200},
        "extra": {
            "pagination": {"total_count": len(rows), "count": len(page)},
            "filters": {"offset": offset, "limit": limit},
        },
    }


@router.post(f"{_BASE}/subscriptions")
async def create_subscription(request: Request, account_id: Id) -> JSONResponse:
    ctx = context(request)
    account_or_404(ctx, account_id)
    fields = await _fields(request, creating=True)
    fields["hmac_secret"] = webhooks.new_secret()
    subscription_id = webhooks.new_id("wsu_")
    await run_in_threadpool(ctx.store.create_subscription, subscription_id, account_id, fields)
    row = ctx.store.get_subscription(subscription_id)
    assert row is not None
    return JSONResponse(_envelope(serialize(row, with_secret=True), 201), status_code=201)


@router.get(f"{_BASE}/subscription/{{subscription_id}}")
def get_subscription(request: Request, account_id: Id, subscription_id: str) -> dict[str, Any]:
    return _envelope(serialize(_subscription_or_404(context(request), account_id, subscription_id)))


@router.put(f"{_BASE}/subscription/{{subscription_id}}")
async def update_subscription(request: Request, account_id: Id, subscription_id: str) -> dict[str, Any]:
    ctx = context(request)
    _subscription_or_404(ctx, account_id, subscription_id)
    fields = await _fields(request, creating=False)
    await run_in_threadpool(ctx.store.update_subscription, subscription_id, **fields)
    return _envelope(serialize(_subscription_or_404(ctx, account_id, subscription_id)))


@router.delete(f"{_BASE}/subscription/{{subscription_id}}")
def delete_subscription(request: Request, account_id: Id, subscription_id: str) -> dict[str, Any]:
    ctx = context(request)
    _subscription_or_404(ctx, account_id, subscription_id)
    ctx.store.delete_subscription(subscription_id)
    return {"data": {"id": subscription_id}, "status": {"code": 200, "is_success": True}}


@router.get(f"{_BASE}/subscription/{{subscription_id}}/test")
def test_subscription(request: Request, account_id: Id, subscription_id: str) -> dict[str, Any]:
    """Send one signed ``test`` event now (one attempt, 10 s timeout) and report the answer."""
    ctx = context(request)
    row = _subscription_or_404(ctx, account_id, subscription_id)
    event_id = webhooks.new_id("wev_")
    body = json.dumps(
        {
            "accountId": account_id,
            "webhooksID": row["id"],
            "eventId": event_id,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "eventType": "test",
            "webhookName": row["name"],
            "data": {},
        }
    ).encode()
    status = webhooks.post(row["client_url"], body, webhooks.sign(row["hmac_secret"], body))
    ctx.store.record_dispatch(row["id"], status)
    return _envelope(
        {
            "event_id": event_id,
            "verification_error": None if 200 <= status < 300 else f"HTTP {status or 'no answer'}",
            "verification_status_code": str(status),
        }
    )
