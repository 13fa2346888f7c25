"""API of connections: ``POST /connections`` (administrators) and ``GET /connections``.

Paths sit beside the sync router's ``/connections/{connection}/health``. Credentials are
accepted and shown only as references (``env:``, ``file:``, ``db:``); see
:mod:`spojka.connectors.models`.
"""

from __future__ import annotations

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
