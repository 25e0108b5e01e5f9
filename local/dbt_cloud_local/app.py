"""
The FastAPI application: the routers, dbt Cloud-style errors, and what happens to every request before
routing (fault injection, oversized bodies, NUL in the URL, paths with or without the trailing slash).

Authentication is each API router's dependency (``api.dependencies``): every API route answers 401
without a valid token, 403 for another account's routes. The HTML run pages and ``/_local/health`` are
open; ``/_local/faults`` needs a token valid for every account.

Every error, including an unexpected one, is answered in dbt Cloud's status envelope, never as plain
text; oversized bodies (413) and URLs holding NUL (400) are refused before any route runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from dbt_cloud_local import __version__
from dbt_cloud_local.api import (
    accounts,
    connections,
    environment_variables,
    environments,
    jobs,
    local,
    projects,
    repositories,
    runs,
    steps,
    unsupported,
    users,
    webhook_subscriptions,
)
from dbt_cloud_local.api.dependencies import ServerContext
from dbt_cloud_local.api.errors import (
    MAX_BODY_BYTES,
    ApiError,
    body_too_large,
    error_response,
    install_handlers,
)
from dbt_cloud_local.faults import FaultInjector
from dbt_cloud_local.model.fields import MAX_INT64
from dbt_cloud_local.pages import routes as pages

#: The routers, in the order their routes are matched.
ROUTERS = (
    accounts.router,
    projects.router,
    environments.router,
    environment_variables.router,
    connections.router,
    repositories.router,
    users.router,
    jobs.router,
    runs.router,
    steps.router,
    pages.router,
    webhook_subscriptions.router,
    local.router,
    # Last: the spec routes refused on purpose (a served route of the same path wins its methods).
    unsupported.router,
)


def _is_api_path(path: str) -> bool:
    return path == "/" or path.startswith("/api/")


def _beyond_64_bits(path: str) -> str | None:
    """A numeric path segment no SQLite id can equal (the run pages look ids up without validating)."""
    for segment in path.split("/"):
        if segment.isascii() and segment.isdigit() and (len(segment) > 19 or int(segment) > MAX_INT64):
            return segment
    return None


def _declared_too_large(request: Request) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > MAX_BODY_BYTES


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
        return error_response(
            ApiError(
                decision.status,
                "Injected fault",
                "The local dbt Cloud server injected this error on purpose.",
                headers=headers,
            )
        )

    async def _checked(request: Request, call_next: Any) -> Response:
        """The checks every request passes before routing, then the route."""
        path = request.url.path
        if _declared_too_large(request):
            return error_response(body_too_large())
        if "\x00" in path or "\x00" in request.url.query or "%00" in request.url.query:
            return error_response(
                ApiError(400, "The URL contains a NUL byte (%00)", "Fix: remove %00 from the path and query")
            )
        if path.startswith("/deploy/") and (segment := _beyond_64_bits(path)):
            return error_response(
                ApiError(
                    400,
                    f"The id {segment[:30]} in the URL is beyond 64-bit integers",
                    "Fix: use an existing id",
                )
            )
        return await call_next(request)

    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # Added last, so it wraps everything: the guard and the routes see the normalised path.
    app.add_middleware(TrailingSlashOptional, routes=lambda: app.router.routes)
    return app
