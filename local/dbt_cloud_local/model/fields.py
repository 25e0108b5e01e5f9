"""
The rules every input is checked by, each written once: what an API request may send, what config.yml
and a jobs file may declare, and what a stored job definition holds.

A rule takes a value and the name of the field it came from, and returns the value (normalised where
it says so) or raises :class:`FieldError` naming the field, the problem and the fix. Each caller words
that error for its reader: the API answers a 400 in dbt Cloud's status envelope, the config loader one
line naming the config key, the jobs file loader the job and its field.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

#: Ids and integer fields must fit SQLite's INTEGER (a signed 64-bit number).
MAX_INT64 = 2**63 - 1
#: A dbt version as dbt Cloud accepts it for a job or a run: ``1.11``, ``latest``, ``versionless``...
DBT_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
#: How long a URL (a webhook's ``client_url``) may be.
MAX_URL_LENGTH = 2048


class FieldError(ValueError):
    """A field is invalid: ``field`` names it (``settings.threads``), ``problem`` says what is wrong
    with it (``must be ...``, ``is ...``) and ``fix`` what to send instead."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem
        self.fix = fix


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: errors name bad input without echoing megabytes."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_integer(value: Any) -> bool:
    """An integer, and not a boolean (``True`` is an ``int`` in Python, never an id in JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


def required(value: Any, field: str, fix: str) -> Any:
    if value is None:
        raise FieldError(field, "is required", fix)
    return value


def of_type(value: Any, field: str, kind: type | tuple[type, ...]) -> Any:
    """``value`` if it is of ``kind`` (a boolean is no integer)."""
    if (isinstance(value, bool) and bool not in _kinds(kind)) or not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in _kinds(kind))
        raise FieldError(field, f"must be a {names}, got {shown(value)}", f"send {field} as a {names}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def integer(
    value: Any, field: str, *, minimum: int = 0, maximum: int = MAX_INT64, nullable: bool = False
) -> Any:
    """An integer from ``minimum`` to ``maximum`` (at most 64 bits); None only when ``nullable``."""
    if value is None and nullable:
        return None
    if not is_integer(value) or not minimum <= value <= maximum:
        raise FieldError(
            field,
            f"must be an integer from {minimum} to {maximum}, got {shown(value)}",
            f"send {field} as a number",
        )
    return value


def boolean(value: Any, field: str, *, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise FieldError(
            field, f"must be true or false, got {shown(value)}", f"send {field} as a JSON boolean"
        )
    return value


def text(value: Any, field: str, *, maximum: int, allow_empty: bool = True, nullable: bool = False) -> Any:
    """A string of at most ``maximum`` characters; blank only when ``allow_empty``."""
    if value is None and nullable:
        return None
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise FieldError(field, f"must be a non-empty string, got {shown(value)}", f"send {field} as text")
    if len(value) > maximum:
        raise FieldError(field, f"is {len(value)} characters long", f"shorten it to at most {maximum}")
    return value


def mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldError(field, f"must be an object, got {shown(value)}", f"send {field} as a JSON object")
    return value


def choice(value: Any, field: str, choices: Collection[str]) -> str:
    if value not in choices:
        raise FieldError(field, f"{shown(value)} is not supported", f"use one of {', '.join(choices)}")
    return value


def choices(value: Any, field: str, known: Collection[str]) -> list[str]:
    """A non-empty list of values from ``known``, each once (in the order first given)."""
    if not isinstance(value, list) or not value:
        raise FieldError(
            field, f"must be a non-empty list, got {shown(value)}", f"list some of {', '.join(known)}"
        )
    for index, item in enumerate(value):
        choice(item, f"{field}[{index}]", known)
    return list(dict.fromkeys(value))


def http_url(value: Any, field: str) -> str:
    """An absolute http or https URL with a host."""
    url = text(value, field, maximum=MAX_URL_LENGTH, allow_empty=False)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FieldError(
            field,
            f"must be an http(s) URL, got {shown(url, 80)}",
            "use e.g. https://airflow.example.com/dbt-cloud-webhooks/events",
        )
    return url


def dbt_version(value: Any, field: str, *, nullable: bool = False) -> Any:
    version = text(value, field, maximum=64, nullable=nullable)
    if version is not None and not DBT_VERSION.fullmatch(version):
        raise FieldError(
            field,
            f"must be a version such as 1.11 or latest, got {shown(version)}",
            "send letters, digits, '.', '-', '+' or '_', at most 64 characters",
        )
    return version


def clean_text(value: str, field: str) -> str:
    """Text dbt's argv and environment, and SQLite, can carry: no NUL, no unpaired surrogate."""
    if "\x00" in value:
        raise FieldError(field, "contains a NUL byte (\\u0000)", f"remove the NUL from {field}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldError(
            field, "contains an unpaired surrogate", f"send {field} as valid UTF-8 text"
        ) from None
    return value


def timestamp(value: Any, field: str) -> datetime:
    """An ISO 8601 date-time (``2025-01-31T12:00:00+00:00``, ``...Z``, a date alone); without an offset it
    is UTC, as dbt Cloud reads it. Returned in UTC."""
    text = value.strip() if isinstance(value, str) else None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        raise FieldError(
            field,
            f"must be an ISO 8601 date-time, got {shown(value)}",
            f"send {field} like 2025-01-31T12:00:00+00:00",
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
