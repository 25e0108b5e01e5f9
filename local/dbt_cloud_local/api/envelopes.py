"""
dbt Cloud's response envelopes: ``{"status": {...}, "data": ...}``, and for lists the ``extra`` block
(filters, ordering, pagination) the provider's paginator reads.
"""

from __future__ import annotations

from typing import Any


def compact(value: Any) -> Any:
    """Drop ``None`` values from mappings, recursively (only for the echoed ``extra.filters``)."""
    if isinstance(value, dict):
        return {key: compact(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


def response_status(code: int = 200, user_message: str = "Success!", developer_message: str = "") -> dict:
    return {
        "code": code,
        "is_success": 200 <= code < 300,
        "user_message": user_message,
        "developer_message": developer_message,
    }


def envelope(data: Any) -> dict[str, Any]:
    return {"status": response_status(), "data": data}


def list_envelope(
    items: list[Any], *, total: int, limit: int, offset: int, filters: dict[str, Any], order_by: str
) -> dict[str, Any]:
    """A list response with the ``extra`` block the provider's paginator reads."""
    return {
        "status": response_status(),
        "data": items,
        "extra": {
            "filters": {**compact(filters), "limit": limit, "offset": offset},
            "order_by": order_by,
            "pagination": {"count": len(items), "total_count": total},
        },
    }
