"""
A request body as JSON that dbt, SQLite and the response encoder can carry, before any route looks at
it: at most ``MAX_BODY_BYTES`` (413, counted while reading, whatever Content-Length says), nested at
most ``MAX_JSON_DEPTH`` levels, no NUL or unpaired surrogate in any string or key, no integer beyond
64 bits, no NaN or Infinity. Each refusal is a 4xx naming the field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from fastapi import Depends, Request

from dbt_cloud_local.api.errors import MAX_BODY_BYTES, ApiError, body_too_large, invalid_field
from dbt_cloud_local.model import fields
from dbt_cloud_local.model.fields import MAX_INT64, FieldError

#: The deepest legitimate body (env var bulk create) nests 3 levels.
MAX_JSON_DEPTH = 32
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


async def read_body(request: Request) -> bytes:
    """The raw body, refused (413) as soon as it passes ``MAX_BODY_BYTES``, whatever Content-Length says."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise body_too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _field(where: str, key: Any) -> str:
    name = key if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) else fields.shown(key, 40)
    return f"{where}.{name}" if where else name


def _too_deep(where: str) -> ApiError:
    return ApiError(
        400,
        f"The request body nests deeper than {MAX_JSON_DEPTH} levels{where}",
        "Fix: send a flat JSON object as the dbt Cloud API reference shows",
    )


def check_json(value: Any) -> None:
    """
    Refuse what dbt, SQLite or the response encoder cannot carry, naming the field: nesting deeper
    than ``MAX_JSON_DEPTH``, NUL or unpaired surrogates in strings and keys, integers beyond 64 bits
    and non-finite numbers. Iterative, so hostile nesting cannot exhaust the stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    try:
        while stack:
            node, where, depth = stack.pop()
            name = where or "the body"
            if depth > MAX_JSON_DEPTH:
                raise _too_deep(f" (at {name})")
            if isinstance(node, dict):
                for key, item in node.items():
                    fields.clean_text(key, f"a key of {name}")
                    stack.append((item, _field(where, key), depth + 1))
            elif isinstance(node, list):
                stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(node))
            elif isinstance(node, str):
                fields.clean_text(node, name)
            elif isinstance(node, bool):
                continue
            elif isinstance(node, int) and abs(node) > MAX_INT64:
                raise ApiError(
                    400, f"{name} is beyond 64-bit integers", f"Fix: send {name} within +/-{MAX_INT64}"
                )
            elif isinstance(node, float) and not math.isfinite(node):
                raise ApiError(
                    400, f"{name} is not a finite number", f"Fix: send {name} as an ordinary number"
                )
    except FieldError as exc:
        raise invalid_field(exc) from None


async def json_body(request: Request) -> Any:
    """The body as checked JSON (``{}`` when empty); every problem is a 4xx naming the field."""
    body = await read_body(request)
    if not body.strip():
        return {}
    try:
        value = json.loads(body.decode("utf-8"))  # NaN/Infinity parse, then check_json names the field
    except RecursionError:
        raise _too_deep("") from None
    except UnicodeDecodeError:
        raise ApiError(400, "The request body is not UTF-8 text", "Fix: send JSON encoded as UTF-8") from None
    except ValueError as exc:
        raise ApiError(
            400, f"The request body is not valid JSON: {str(exc)[:200]}", "Fix: send a JSON object"
        ) from None
    check_json(value)
    return value


#: A route's checked JSON body.
JsonBody = Annotated[Any, Depends(json_body)]
