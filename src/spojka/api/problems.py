"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from spojka.core import tracing
from spojka.core.errors import SpojkaError, TransientError
from spojka.core.logging import get_logger

PROBLEM = "application/problem+json"
log = get_logger("spojka.api")


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    instance: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:spojka:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    trace_id = tracing.current_trace_id()
    if trace_id:
        body["trace_id"] = trace_id
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(SpojkaError)
    async def _spojka(request: Request, exc: SpojkaError) -> JSONResponse:
        headers = {}
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, TransientError) and exc.retry_after:
            headers["Retry-After"] = str(int(exc.retry_after))
        extra = {"errors": exc.detail["errors"]} if "errors" in exc.detail else None
        return problem(
            exc.status_code,
            exc.title,
            exc.message,
            code=exc.code,
            instance=request.url.path,
            extra=extra,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(
                400,
                "Malformed JSON",
                "the request body is not valid JSON",
                code="malformed_json",
                instance=request.url.path,
            )
        items = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
        detail = "; ".join(f"{i['field']}: {i['message']}" for i in items)
        return problem(
            422,
            "Invalid input",
            detail,
            code="validation",
            instance=request.url.path,
            extra={"errors": items},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code,
            str(exc.detail),
            str(exc.detail),
            code=f"http_{exc.status_code}",
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", path=request.url.path, error=repr(exc))
        return problem(
            500,
            "Internal error",
            "an unexpected error occurred; see the server log by trace id",
            code="internal",
            instance=request.url.path,
        )
