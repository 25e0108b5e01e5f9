"""
The FastAPI application: authentication, fault injection, dbt Cloud-style errors and local routes.

Authentication follows dbt Cloud: ``Authorization: Token <token>`` or ``Bearer <token>`` on every API
route, 401 otherwise. Tokens are compared in constant time and never logged. A token belongs to the
accounts the config gives it: another account's routes answer 403, and the account list shows only
its own. The HTML run pages and ``/_local/health`` are open; ``/_local/faults`` changes the whole
server, so it needs a token valid for every account.

Every error, including an unexpected one, is answered in dbt Cloud's status envelope, never as plain
text; oversized bodies (413) and URLs holding NUL (400) are refused before any route runs.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from dbt_cloud_local import __version__, api, api_webhooks, pages, serializers
from dbt_cloud_local.api import MAX_BODY_BYTES, MAX_INT64, ApiError, ServerContext
from dbt_cloud_local.config import Config
from dbt_cloud_local.faults import FaultInjector, parse_fault_settings

_OPEN_PREFIXES = ("/deploy/", "/_local/health")
_ACCOUNT_IN_PATH = re.compile(r"^/api/v[23]/accounts/([0-9]+)(?:/|$)")


def _is_api_path(path: str) -> bool:
    return path == "/" or path.startswith("/api/")


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and token.strip():
        return token.strip()
    return None


def _matching_token(token: str | None, accepted: tuple[str, ...]) -> str | None:
    """The configured token equal to ``token``, or None."""
    if token is None:
        return None
    # Compare against every token so the time taken does not reveal which one matched.
    presented = token.encode()
    matches = [hmac.compare_digest(presented, candidate.encode()) for candidate in accepted]
    return next((candidate for candidate, match in zip(accepted, matches, strict=True) if match), None)


def _account_in_path(path: str) -> int | None:
    """The account id of an API path; ids beyond 64 bits are left to the route's 400."""
    match = _ACCOUNT_IN_PATH.match(path)
    account = int(match.group(1)) if match and len(match.group(1)) <= 19 else None
    return account if account is not None and account <= MAX_INT64 else None


def _error(code: int, user_message: str, developer_message: str = "", **kwargs: Any) -> JSONResponse:
    return JSONResponse(
        serializers.error_body(code, user_message, developer_message), status_code=code, **kwargs
    )


def _beyond_64_bits(path: str) -> str | None:
    """A numeric path segment no SQLite id can equal (the run pages look ids up without validating)."""
    for segment in path.split("/"):
        if segment.isascii() and segment.isdigit() and (len(segment) > 19 or int(segment) > MAX_INT64):
            return segment
    return None


def _declared_too_large(request: Request) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > MAX_BODY_BYTES


def _authorize(request: Request, config: Config) -> JSONResponse | None:
    """401 without a valid token, 403 for another account's routes; else remember the token's accounts."""
    token = _matching_token(_presented_token(request), config.api_tokens)
    if token is None:
        return _error(
            401,
            "Invalid token.",
            "Send 'Authorization: Token <api token>' with a token configured for the local server.",
            headers={"WWW-Authenticate": "Token"},
        )
    limited_to = config.accounts_for(token)
    request.state.accounts = limited_to
    if limited_to is None:
        return None
    account = _account_in_path(request.url.path)
    if account is not None and account not in limited_to:
        return _error(
            403,
            f"This token may not access account {account}.",
            "Fix: use a token listed for this account under `api_tokens` in the local server's config.",
        )
    if request.url.path.startswith("/_local/faults"):
        return _error(
            403,
            "Fault injection affects every account; this token is limited to some accounts.",
            "Fix: use a token valid for every account (a plain string under `api_tokens`).",
        )
    return None


class TrailingSlashOptional:
    """
    Serve every route with and without its trailing slash, like dbt Cloud (clients such as the
    provider's ``get_job`` call ``.../jobs/7`` without it). Before routing, a path that no route
    matches is rewritten to its other form (slash added or removed) when a route matches that one.
    No redirect: a 307 makes some clients drop the body of a POST, so both forms get the same answer.
    Routes are read from the app at request time, so a route added later is covered too.
    """

    def __init__(self, app: ASGIApp, routes: Any) -> None:
        self.app = app
        self.routes = routes

    def _served(self, scope: Scope, path: str) -> bool:
        probe = {**scope, "path": path}
        return any(route.matches(probe)[0] != Match.NONE for route in self.routes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path not in ("", "/") and not self._served(scope, path):
            other = path[:-1] if path.endswith("/") else path + "/"
            if self._served(scope, other):
                raw = scope.get("raw_path")
                if isinstance(raw, bytes):
                    raw = raw[:-1] if raw.endswith(b"/") else raw + b"/"
                scope = {**scope, "path": other, "raw_path": raw}
        await self.app(scope, receive, send)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and "authorization" not in request.headers


def create_app(ctx: ServerContext, faults: FaultInjector) -> FastAPI:
    app = FastAPI(
        title="Local dbt Cloud",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.state.ctx = ctx
    app.state.faults = faults

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path == "/" and request.method == "GET" and _wants_html(request):
            return RedirectResponse("/deploy/")
        if not _is_api_path(path):
            return await _checked(request, call_next)
        decision = faults.decide(request.method, path)
        if decision.latency_seconds:
            await asyncio.sleep(decision.latency_seconds)
        if decision.status is None:
            return await _checked(request, call_next)
        if decision.after:  # the request is carried out; its answer is lost on the way back
            carried_out = await _checked(request, call_next)
            async for _ in getattr(carried_out, "body_iterator", ()):
                pass
        headers = {"Retry-After": "1"} if decision.status == 429 else None
        return _error(
            decision.status,
            "Injected fault",
            "The local dbt Cloud server injected this error on purpose.",
            headers=headers,
        )

    async def _checked(request: Request, call_next: Any) -> Response:
        """Authentication and the checks every request passes, then the route."""
        path = request.url.path
        if _is_api_path(path) or path.startswith("/_local/faults"):
            refusal = _authorize(request, ctx.config)
            if refusal is not None:
                return refusal
        if _declared_too_large(request):
            return api.error_response(api.body_too_large())
        if "\x00" in path or "\x00" in request.url.query or "%00" in request.url.query:
            return _error(400, "The URL contains a NUL byte (%00)", "Fix: remove %00 from the path and query")
        if path.startswith("/deploy/") and (segment := _beyond_64_bits(path)):
            return _error(
                400, f"The id {segment[:30]} in the URL is beyond 64-bit integers", "Fix: use an existing id"
            )
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return api.error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "The requested resource was not found.", 405: "Method not allowed."}
        message = messages.get(exc.status_code, str(exc.detail))
        return api.error_response(ApiError(exc.status_code, message, f"{request.method} {request.url.path}"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI validates only the path ids (``api.Id``); name each bad one and the valid range."""
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}" for error in exc.errors()
        )
        return api.error_response(
            ApiError(
                400,
                f"Invalid request parameters: {details}",
                f"Fix: ids are whole numbers from 1 to {MAX_INT64}.",
            )
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        """A bug must still answer in the envelope; Starlette logs the traceback after this."""
        return _error(500, "Internal error in the local dbt Cloud server.", "See the server log for details.")

    @app.get("/_local/health", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/_local/faults", include_in_schema=False)
    def get_faults() -> dict[str, Any]:
        return {"data": faults.settings.as_dict(), "injected": faults.injected}

    @app.put("/_local/faults", include_in_schema=False)
    async def put_faults(request: Request) -> dict[str, Any]:
        """Replace the fault settings (same shape as the config's ``faults:`` section)."""
        raw = await api.json_body(request)
        try:
            settings = parse_fault_settings(raw if isinstance(raw, dict) else {"invalid": raw})
        except ValueError as exc:
            raise ApiError(400, f"Invalid fault settings: {exc}") from None
        faults.update(settings)
        return {"data": settings.as_dict(), "injected": 0}

    @app.delete("/_local/faults", include_in_schema=False)
    def clear_faults() -> dict[str, Any]:
        faults.update(parse_fault_settings({}))
        return {"data": faults.settings.as_dict(), "injected": 0}

    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(api_webhooks.router)
    # Added last, so it wraps everything: the guard and the routes see the normalised path.
    app.add_middleware(TrailingSlashOptional, routes=lambda: app.router.routes)
    return app
