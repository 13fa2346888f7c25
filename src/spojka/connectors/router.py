"""API of connections: ``POST`` and ``DELETE /connections`` (administrators), ``GET`` (all).

Paths sit beside the sync router's ``/connections/{connection}/health``. Credentials are
accepted and shown only as references (``env:``, ``file:``, ``db:``); see
:mod:`spojka.connectors.models`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from spojka.api.auth import ADMIN, READ, Principal, get_app, require
from spojka.connectors import service
from spojka.connectors.models import ConnectionCreate, ConnectionRead

router = APIRouter(tags=["connections"])


def _reload_sync_engine(request: Request) -> None:
    """The API's sync engine keeps connectors built; the next use builds them again."""
    from spojka.sync.router import sync_engine

    sync_engine(request).engine.reload()


@router.post(
    "/connections",
    response_model=ConnectionRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "An existing connection was replaced"}},
)
def save_connection(
    connection_in: ConnectionCreate,
    request: Request,
    response: Response,
    principal: Principal = require(ADMIN),
) -> ConnectionRead:
    """Create a connection, or replace the one of that name (201 created, 200 replaced).

    Credentials by reference only; an inline value is refused with a 422 naming the field.
    """
    saved, created = service.save(
        db=get_app(request).engine, connection_in=connection_in, actor=principal.name
    )
    _reload_sync_engine(request)
    if not created:
        response.status_code = status.HTTP_200_OK
    return saved


@router.get("/connections", response_model=list[ConnectionRead])
def list_connections(
    request: Request, principal: Principal = require(READ)
) -> list[ConnectionRead]:
    """Every connection with its settings; credentials as references, never values."""
    return service.list_all(db=get_app(request).engine)


@router.get("/connections/{connection}", response_model=ConnectionRead)
def get_connection(
    connection: str, request: Request, principal: Principal = require(READ)
) -> ConnectionRead:
    return service.get(db=get_app(request).engine, name=connection)


@router.delete(
    "/connections/{connection}",
    responses={
        404: {"description": "No connection of that name"},
        409: {"description": "Open work (pending deliveries, dead letters, conflicts); force"},
    },
)
def remove_connection(
    connection: str,
    request: Request,
    force: bool = False,
    forget_links: bool = False,
    principal: Principal = require(ADMIN),
) -> dict[str, Any]:
    """Remove a connection: syncing with that system stops; canonical records stay.

    Refused with a 409 while writes to it are pending or its dead letters or conflicts are
    open (the problem says how many); ``force=true`` removes it anyway, discarding those dead
    letters and withdrawing those conflicts. Links stay unless ``forget_links=true``, so the
    same connection added again finds its records instead of creating them twice.
    """
    removed = service.remove(
        db=get_app(request).engine,
        name=connection,
        actor=principal.name,
        force=force,
        forget_links=forget_links,
    )
    _reload_sync_engine(request)  # its webhooks get 404 from now on, nothing is sent to it
    return {"connection": connection, "removed": removed}
