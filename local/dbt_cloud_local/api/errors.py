"""
Every error in dbt Cloud's status envelope: ``{"status": {"code", "is_success": false, "user_message",
"developer_message"}, "data": null}``, whatever raised it: a route (:class:`ApiError`), a refused field
(:class:`~dbt_cloud_local.model.fields.FieldError`), FastAPI itself (an unknown route, a bad path id)
or a bug in this server (500), never plain text.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dbt_cloud_local.api.envelopes import response_status
from dbt_cloud_local.model.fields import MAX_INT64, FieldError

#: Request bodies are small JSON objects; anything larger is a mistake or an attack (413).
MAX_BODY_BYTES = 1024 * 1024


class ApiError(Exception):
    """An error answered with dbt Cloud's status envelope."""

    def __init__(
        self, code: int, user_message: str, developer_message: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(user_message)
        self.code = code
        self.user_message = user_message
        self.developer_message = developer_message
        self.headers = headers


def invalid_field(error: FieldError, subject: str | None = None) -> ApiError:
    """A 400 naming the refused field: ``Invalid job field settings.threads: ...`` with a ``subject``,
    else ``threads_override must be ...``."""
    message = f"Invalid {subject} field {error.field}: {error.problem}" if subject else str(error)
    return ApiError(400, message, f"Fix: {error.fix}")


def body_too_large() -> ApiError:
    return ApiError(
        413,
        f"The request body is larger than {MAX_BODY_BYTES} bytes",
        "Fix: send a small JSON object as the dbt Cloud API reference shows",
    )


def error_body(code: int, user_message: str, developer_message: str = "") -> dict[str, Any]:
    return {"status": response_status(code, user_message, developer_message), "data": None}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.code, error.user_message, error.developer_message),
        status_code=error.code,
        headers=error.headers,
    )


def install_handlers(app: FastAPI) -> None:
    """Answer every exception a request can end with in the envelope."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "The requested resource was not found.", 405: "Method not allowed."}
        message = messages.get(exc.status_code, str(exc.detail))
        return error_response(ApiError(exc.status_code, message, f"{request.method} {request.url.path}"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI validates only the path ids (``dependencies.Id``); name each bad one and the range."""
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}" for error in exc.errors()
        )
        return error_response(
            ApiError(
                400,
                f"Invalid request parameters: {details}",
                f"Fix: ids are whole numbers from 1 to {MAX_INT64}.",
            )
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        """A bug must still answer in the envelope; Starlette logs the traceback after this."""
        return error_response(
            ApiError(500, "Internal error in the local dbt Cloud server.", "See the server log for details.")
        )
