"""The FastAPI application: versioned routers under /api/v1, health, readiness, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import spojka
from spojka.api import problems
from spojka.api.auth import READ, Principal, get_app, require
from spojka.api.middleware import RequestContextMiddleware
from spojka.bootstrap import Spojka
from spojka.connectors.router import router as connectors_router
from spojka.core import telemetry
from spojka.documents.router import router as documents_router
from spojka.flows.router import router as flows_router
from spojka.governance.router import router as governance_router
from spojka.quality.router import router as quality_router
from spojka.runtime import engine
from spojka.runtime.router import router as runtime_router
from spojka.sync.intake import FAST_PATH as webhook_fast_path
from spojka.sync.router import ensure_worker as ensure_sync_worker
from spojka.sync.router import router as sync_router
from spojka.sync.router import stop_workers as stop_sync_workers

WEB_ROOT = Path(__file__).parent / "web"

status_router = APIRouter(tags=["status"])


@status_router.get("/status")
async def get_status(request: Request, principal: Principal = require(READ)) -> dict[str, Any]:
    app = get_app(request)
    return {
        "version": spojka.__version__,
        "profile": app.settings.profile,
        "database": app.engine.dialect.name,
        "runtime": "running" if engine.is_launched() else "not running in this process",
        "uptime_s": round(time.monotonic() - request.app.state.started, 1),
        "you": {"name": principal.name, "role": principal.role.value},
    }


# Domains add (prefix, router) pairs here; every route in them must carry a RoleGuard.
API_ROUTERS: list[APIRouter] = [
    status_router,
    governance_router,
    runtime_router,
    sync_router,
    connectors_router,
    quality_router,
    documents_router,
    flows_router,
]


def create_app(instance: Spojka, *, with_runtime: bool = False) -> FastAPI:
    """Build the API for one Spojka instance; ``with_runtime`` also runs workflows here."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Webhook events stored before a crash are processed now, not on the next delivery.
        ensure_sync_worker(instance.engine)
        if with_runtime:
            # DBOS refuses register_queue() inside a running event loop: launch off the loop.
            await asyncio.to_thread(engine.launch, instance.settings, executor_id="serve")
        yield
        stop_sync_workers()
        if with_runtime:
            await asyncio.to_thread(engine.shutdown)

    app = FastAPI(
        title="Spojka API",
        version=spojka.__version__,
        description="Links CRM, ERP and project management. Every /api/v1 route needs "
        "'Authorization: Bearer <token>' (create one with `spojka token create`).",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        # Spojka's own middleware traces and measures requests; FastAPI's native telemetry
        # would only cost a provider check on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    telemetry.configure(instance.settings.otlp_endpoint)
    app.state.spojka = instance
    app.state.started = time.monotonic()
    problems.install(app)
    for router in API_ROUTERS:
        app.include_router(router, prefix="/api/v1")

    @app.get("/health", tags=["status"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["status"])
    def ready() -> JSONResponse:
        """Readiness: the database answers, and the runtime runs where it should."""
        checks: dict[str, str] = {}
        try:
            with instance.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except sa.exc.SQLAlchemyError as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        if with_runtime:
            checks["runtime"] = "ok" if engine.is_launched() else "not running"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["status"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def web_root() -> FileResponse:
        return FileResponse(WEB_ROOT / "index.html")

    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=instance.settings.max_body_bytes,
        max_upload_bytes=instance.settings.max_upload_bytes,
        fast_paths=[webhook_fast_path],  # webhook deliveries skip the framework's routing
    )
    return app
