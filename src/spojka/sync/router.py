"""API of the sync engine. The webhook receiver is authenticated by its signature; every
other route carries a role guard."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from spojka.api.auth import APPROVE, OPERATE, READ, Principal, get_app, require
from spojka.connectors.base import WebhookReply
from spojka.sync import service, webhooks
from spojka.sync.engine import SyncEngine
from spojka.sync.models import ConflictRead, ConflictResolve, DeadLetterRead

router = APIRouter(tags=["sync"])

_lock = threading.Lock()
_engines: dict[int, _SyncRuntime] = {}


def ensure_worker(db: Engine) -> webhooks.WebhookWorker:
    """Start the inbox worker of a database (call at app start: it drains what a crash left)."""
    return _runtime(db).worker


@dataclass
class _SyncRuntime:
    engine: SyncEngine
    worker: webhooks.WebhookWorker
    writer: webhooks.InboxWriter


def _runtime(db: Engine) -> _SyncRuntime:
    key = id(db)
    with _lock:
        found = _engines.get(key)
        if found is None:
            engine = SyncEngine(db)
            worker = webhooks.WebhookWorker(engine)
            worker.start()
            found = _engines[key] = _SyncRuntime(engine, worker, webhooks.InboxWriter(db))
    return found


def sync_engine(request: Request) -> _SyncRuntime:
    """One SyncEngine, inbox writer and inbox worker per application instance."""
    return _runtime(get_app(request).engine)


def stop_workers() -> None:
    """Stop inbox workers (app shutdown, tests)."""
    with _lock:
        for runtime in _engines.values():
            runtime.writer.stop()
            runtime.worker.stop()
            runtime.engine.close()
        _engines.clear()


def _reply(reply: WebhookReply) -> Response:
    return Response(content=reply.body, status_code=reply.status, headers=dict(reply.headers))


@router.post("/webhooks/{connection}", status_code=status.HTTP_202_ACCEPTED, response_model=None)
async def receive_webhook(connection: str, request: Request) -> dict[str, Any] | Response:
    """Verify (HMAC + timestamp window), store durably, then answer; processing is async.
    A vendor's handshake (Asana) or own answer (Xero: 200, no body) comes from its connector."""
    body = await request.body()
    headers = dict(request.headers)
    runtime = sync_engine(request)
    try:
        if connection in runtime.engine.cached_connections():
            rows = webhooks.verify(
                engine=runtime.engine, connection=connection, headers=headers, body=body
            )
        else:  # first use reads the connection from the database
            rows = await run_in_threadpool(
                webhooks.verify,
                engine=runtime.engine,
                connection=connection,
                headers=headers,
                body=body,
            )
    except webhooks.Handshake as handshake:
        return _reply(
            await run_in_threadpool(
                webhooks.complete_handshake,
                engine=runtime.engine,
                connection=connection,
                reply=handshake.reply,
            )
        )
    stored = await asyncio.wrap_future(runtime.writer.submit(rows))
    runtime.worker.wake()
    duplicates = len(rows) - stored
    own = webhooks.accepted_reply(
        engine=runtime.engine, connection=connection, stored=stored, duplicates=duplicates
    )
    if own is not None:
        return _reply(own)
    return {"stored": stored, "duplicates": duplicates}


@router.get("/connections/{connection}/health")
def connection_health(
    connection: str, request: Request, principal: Principal = require(READ)
) -> dict[str, Any]:
    engine = sync_engine(request).engine
    return service.health(db=engine.db, connection=connection, engine=engine)


@router.get("/conflicts", response_model=list[ConflictRead])
def list_conflicts(
    request: Request, state: str = "open", principal: Principal = require(READ)
) -> list[ConflictRead]:
    return service.list_conflicts(
        db=get_app(request).engine, status=None if state == "all" else state, limit=1000
    )


@router.get("/conflicts/{conflict_id}", response_model=ConflictRead)
def get_conflict(
    conflict_id: int, request: Request, principal: Principal = require(READ)
) -> ConflictRead:
    return service.get_conflict(db=get_app(request).engine, conflict_id=conflict_id)


@router.post("/conflicts/{conflict_id}/resolve", response_model=ConflictRead)
def resolve_conflict(
    conflict_id: int,
    body: ConflictResolve,
    request: Request,
    principal: Principal = require(APPROVE | OPERATE),
) -> ConflictRead:
    engine = sync_engine(request).engine
    return service.resolve_conflict(
        db=engine.db,
        engine=engine,
        conflict_id=conflict_id,
        pick=body.pick,
        value=body.value,
        actor=principal.name,
        reason=body.reason,
    )


@router.get("/dlq", response_model=list[DeadLetterRead])
def list_dead_letters(
    request: Request,
    connection: str | None = None,
    state: str = "open",
    principal: Principal = require(READ),
) -> list[DeadLetterRead]:
    return service.list_dead_letters(
        db=get_app(request).engine,
        connection=connection,
        status=None if state == "all" else state,
        limit=1000,
    )


@router.get("/dlq/{item_id}", response_model=DeadLetterRead)
def get_dead_letter(
    item_id: int, request: Request, principal: Principal = require(READ)
) -> DeadLetterRead:
    return service.get_dead_letter(db=get_app(request).engine, item_id=item_id)


class ReplayRequest(BaseModel):
    ids: list[int] | None = None
    connection: str | None = None


@router.post("/dlq/replay")
def replay_dead_letters(
    body: ReplayRequest, request: Request, principal: Principal = require(OPERATE)
) -> dict[str, int]:
    engine = sync_engine(request).engine
    return service.replay_dead_letters(
        db=engine.db,
        engine=engine,
        ids=body.ids,
        connection=body.connection,
        actor=principal.name,
    )


class DiscardRequest(BaseModel):
    reason: str | None = None


@router.post("/dlq/{item_id}/discard")
def discard_dead_letter(
    item_id: int, body: DiscardRequest, request: Request, principal: Principal = require(OPERATE)
) -> dict[str, int]:
    count = service.discard_dead_letters(
        db=get_app(request).engine, ids=[item_id], actor=principal.name, reason=body.reason
    )
    return {"discarded": count}
