"""
Query parameters, parsed by hand because clients encode them in several ways (``include_related`` as
repeated keys, comma-joined or a JSON list; ``status__in`` as the string ``"[1, 2, 3]"``;
``finished_at__range`` as ``["<iso>", "<iso>"]`` or two keys). Integers are plain ASCII digits from 0
to the 64-bit limit: no exponent, no sign games. A list route that filters (runs, jobs) names the
parameters it takes (``known_parameters``): any other is refused, never silently ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from dbt_cloud_local.api.dependencies import Context
from dbt_cloud_local.api.errors import ApiError, invalid_field
from dbt_cloud_local.model import fields
from dbt_cloud_local.model.fields import MAX_INT64, FieldError, shown

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


def known_parameters(request: Request, known: frozenset[str], account_id: int, what: str) -> None:
    """
    Refuse a query parameter ``known`` (the spec's parameters of the route) does not list, naming it.
    ``account_id`` is also taken when it names the URL's account: clients such as dagster-dbt send it.
    """
    for name in dict.fromkeys(request.query_params.keys()):
        if name == "account_id":
            if as_int(request.query_params[name], name) != account_id:
                raise ApiError(
                    400,
                    f"Query parameter account_id is {shown(request.query_params[name])} but the URL names "
                    f"account {account_id}",
                    "Fix: leave account_id out, or send the account of the URL",
                )
        elif name not in known:
            raise ApiError(
                400,
                f"Unknown query parameter {shown(name, 40)} for {what}",
                f"Fix: use the parameters dbt Cloud documents for it: {', '.join(sorted(known))}",
            )


def query_bool(request: Request, name: str) -> bool | None:
    """A boolean query parameter: ``true``/``false`` (any case), ``1``/``0``; absent: None."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if value.strip().lower() in ("true", "1"):
        return True
    if value.strip().lower() in ("false", "0"):
        return False
    raise ApiError(
        400, f"Query parameter {name} must be true or false, got {shown(value)}", f"Fix: {name}=true"
    )


def query_ints(request: Request, *names: str) -> frozenset[int] | None:
    """The ids ``names`` allow together (``project_id`` and ``project_id__in``: an id both allow); None
    when none of them is given. A given but empty list (``pk__in=[]``) allows nothing."""
    allowed: frozenset[int] | None = None
    for name in names:
        if name not in request.query_params:
            continue
        values = query_list(request, name) if name.endswith("__in") else [request.query_params[name]]
        given = frozenset(as_int(value, name) for value in values if value.strip() != "")
        if not given and not name.endswith("__in"):
            continue  # ``project_id=``: no filter, as ``query_int`` reads it
        allowed = given if allowed is None else allowed & given
    return allowed


def query_range(request: Request, name: str) -> tuple[str | None, str | None] | None:
    """
    A date-time range: ``name=["<from>", "<to>"]`` (a JSON pair, as dagster-dbt sends it) or the key
    twice; either end may be open (``null`` or empty). Both ends are included, as ISO strings in UTC
    in the store's form (``2025-01-31T12:00:00.000000+00:00``). Absent: None.
    """
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    ends: list[object]
    if len(raw) == 1 and raw[0].strip().startswith("["):
        try:
            parsed = json.loads(raw[0])
        except (ValueError, RecursionError):
            parsed = None
        ends = parsed if isinstance(parsed, list) else [raw[0]]
    elif len(raw) == 1:
        ends = raw[0].split(",")
    else:
        ends = list(raw)
    if len(ends) != 2:
        raise ApiError(
            400,
            f"Query parameter {name} must be a pair of date-times, got {shown(raw)}",
            f'Fix: {name}=["2025-01-01T00:00:00+00:00", "2025-01-02T00:00:00+00:00"] (null for an open end)',
        )
    bounds: list[str | None] = []
    for end in ends:
        if end is None or (isinstance(end, str) and end.strip() in ("", "null", "None")):
            bounds.append(None)
            continue
        try:
            moment = fields.timestamp(end, name)
        except FieldError as exc:
            raise invalid_field(exc) from None
        bounds.append(moment.isoformat(timespec="microseconds"))
    return bounds[0], bounds[1]


#: ``state``: 1 or "active", 2 or "deleted", "all" (both).
_STATES = {"1": frozenset({1}), "active": frozenset({1}), "2": frozenset({2}), "deleted": frozenset({2}),
           "all": frozenset({1, 2})}  # fmt: skip


def query_state(request: Request, default: str) -> frozenset[int]:
    """``state`` as the spec's ``oneOf`` integer or ``active``/``deleted``/``all``: the states it keeps."""
    value = (request.query_params.get("state") or default).strip().lower()
    if value not in _STATES:
        raise ApiError(
            400,
            f"Query parameter state must be 1, 2, active, deleted or all, got {shown(value)}",
            "Fix: state=active (1), deleted (2) or all",
        )
    return _STATES[value]


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


#: ``include_related`` values the routes of runs, steps and artifacts take: those the spec documents
#: for them (``run_steps``, ``debug_logs``, ``trigger``, ``job``, ``environment`` are honoured; the
#: others add what the local dbt Cloud has: nothing for ``audit``, no retries or repository cache).
RUN_RELATED = frozenset(
    {"trigger", "job", "environment", "repository", "run_steps", "run_retries", "used_repo_cache",
     "repo_cache_restore", "audit", "debug_logs"}
)  # fmt: skip


async def include_related(request: Request) -> frozenset[str]:
    """``include_related`` (repeated keys, comma-joined or a JSON list); an unknown value is refused."""
    values = frozenset(query_list(request, "include_related"))
    unknown = sorted(values - RUN_RELATED)
    if unknown:
        raise ApiError(
            400,
            f"Unknown include_related value {shown(unknown[0], 40)}",
            f"Fix: use some of {', '.join(sorted(RUN_RELATED))}",
        )
    return values


Paging = Annotated[Page, Depends(paging)]
#: ``include_related``: the related objects a run response should carry.
Include = Annotated[frozenset[str], Depends(include_related)]
