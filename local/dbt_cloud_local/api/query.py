"""
Query parameters, parsed by hand because clients encode them in several ways (``include_related`` as
repeated keys, comma-joined or a JSON list; ``status__in`` as the string ``"[1, 2, 3]"``). Integers are
plain ASCII digits from 0 to the 64-bit limit: no exponent, no sign games.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from dbt_cloud_local.api.dependencies import Context
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.model.fields import MAX_INT64, shown

_INTEGER = re.compile(r"^[+-]?[0-9]{1,30}$")
T = TypeVar("T")


def as_int(value: str, name: str) -> int:
    """A query integer from 0 to ``MAX_INT64``."""
    text = value.strip() if isinstance(value, str) else ""
    number = int(text) if _INTEGER.fullmatch(text) else None
    if number is None or not 0 <= number <= MAX_INT64:
        raise ApiError(
            400,
            f"Query parameter {name} must be an integer from 0 to {MAX_INT64}, got {shown(value)}",
            f"Fix: send {name} as plain digits, e.g. {name}=1",
        )
    return number


def query_int(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    return as_int(value, name)


def query_list(request: Request, name: str) -> list[str]:
    """Accept ``a&a``, ``a,b``, ``["a","b"]`` and ``[1, 2]``."""
    items: list[str] = []
    for raw in request.query_params.getlist(name):
        raw = raw.strip()
        if raw.startswith("["):
            try:
                parsed = json.loads(raw)
            except (ValueError, RecursionError):
                parsed = raw.strip("[]").split(",")
            values = parsed if isinstance(parsed, list) else [parsed]
        else:
            values = raw.split(",")
        items.extend(str(value).strip().strip("'\"") for value in values if str(value).strip())
    return items


def name_filter(request: Request) -> str | None:
    """``name__icontains``, lower-cased for a case-insensitive match."""
    value = request.query_params.get("name__icontains")
    return value.lower() if value else None


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int

    def of(self, items: list[T]) -> list[T]:
        """This page of ``items``."""
        return items[self.offset : self.offset + self.limit]


async def paging(request: Request, ctx: Context) -> Page:
    """``limit`` (1 to 100, default the configured page size) and ``offset``."""
    limit = query_int(request, "limit", ctx.config.server.page_size)
    offset = query_int(request, "offset", 0)
    assert limit is not None
    assert offset is not None
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit must be between 1 and 100")
    return Page(limit, offset)


async def include_related(request: Request) -> frozenset[str]:
    return frozenset(query_list(request, "include_related"))


Paging = Annotated[Page, Depends(paging)]
#: ``include_related``: the related objects a run response should carry.
Include = Annotated[frozenset[str], Depends(include_related)]
