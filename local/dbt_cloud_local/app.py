"""
The FastAPI application: authentication, fault injection, dbt Cloud-style errors and local routes.

Authentication follows dbt Cloud: ``Authorization: Token <token>`` or ``Bearer <token>`` on every API
route, 401 otherwise. Tokens are compared in constant time and never logged. The HTML run pages and
``/_local/health`` are open; ``/_local/faults`` needs a token like the API.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from dbt_cloud_local import __version__, api, pages, serializers
from dbt_cloud_local.api import ApiError, ServerContext
from dbt_cloud_local.faults import FaultInjector, parse_fault_settings

_OPEN_PREFIXES = ("/deploy/", "/_local/health")


def _is_api_path(path: str) -> bool:
    return path == "/" or path.startswith("/api/")


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and token.strip():
        return token.strip()
    return None


def _token_valid(token: str | None, accepted: tuple[str, ...]) -> bool:
    if token is None:
        return False
    # Compare against every token so the time taken does not reveal which one matched.
    matches = [hmac.compare_digest(token.encode(), candidate.encode()) for candidate in accepted]
    return any(matches)


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
        if _is_api_path(path):
            decision = faults.decide(request.method, path)
            if decision.latency_seconds:
                await asyncio.sleep(decision.latency_seconds)
            if decision.status is not None:
                headers = {"Retry-After": "1"} if decision.status == 429 else None
                body = serializers.error_body(
                    decision.status,
                    "Injected fault",
                    "The local dbt Cloud server injected this error on purpose.",
                )
                return JSONResponse(body, status_code=decision.status, headers=headers)
        needs_token = _is_api_path(path) or path.startswith("/_local/faults")
        if needs_token and not _token_valid(_presented_token(request), ctx.config.api_tokens):
            body = serializers.error_body(
                401,
                "Invalid token.",
                "Send 'Authorization: Token <api token>' with a token configured for the local server.",
            )
            return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Token"})
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
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return api.error_response(ApiError(400, "Invalid request parameters.", details))

    @app.get("/_local/health", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/_local/faults", include_in_schema=False)
    def get_faults() -> dict[str, Any]:
        return {"data": faults.settings.as_dict(), "injected": faults.injected}

    @app.put("/_local/faults", include_in_schema=False)
    async def put_faults(request: Request) -> dict[str, Any]:
        """Replace the fault settings (same shape as the config's ``faults:`` section)."""
        try:
            raw = await request.json()
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
    return app
