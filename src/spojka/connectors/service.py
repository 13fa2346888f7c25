"""Connections as the API writes and reads them: checked, stored through the sync domain's
``save_connection``, and shown with credential references only."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from spojka.connectors import registry
from spojka.connectors.models import (
    ConnectionCreate,
    ConnectionRead,
    Ownership,
    PollingRead,
    RateLimit,
    is_credential,
    is_reference,
)
from spojka.core.errors import NotFoundError, SpojkaError, ValidationError
from spojka.governance import audit
from spojka.governance.models import StoredSecret
from spojka.sync import schedule
from spojka.sync import service as sync_service
from spojka.sync.mapping import MappingError, parse_mapping
from spojka.sync.store import CONNECTION, OWNERSHIP

_URL = re.compile(r"^https?://[^\s/]+")


class ConnectionInvalid(ValidationError):
    """A connection request the API refuses; ``detail["errors"]`` names every field."""

    status_code = 422

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), detail={"errors": errors}
        )


def _problems(db: Engine, connection_in: ConnectionCreate) -> list[dict[str, str]]:
    """Every reason to refuse the request (empty when it can be stored)."""
    errors: list[dict[str, str]] = []

    def refuse(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    try:
        registry.connector_class(connection_in.kind)
    except SpojkaError as exc:
        refuse("kind", exc.message)
    if connection_in.url is not None and not _URL.match(connection_in.url):
        refuse("url", "must be an http:// or https:// URL")
    stored: list[tuple[str, str]] = []
    for key, value in sorted(connection_in.credentials.items()):
        if not is_reference(value):
            refuse(
                f"credentials.{key}",
                "an inline secret is refused; give a reference env:NAME, file:/path or "
                "db:NAME (store a value with `spojka sync connect NAME --option key=value`)",
            )
        elif value.startswith("db:"):
            stored.append((key, value[3:]))
        elif value.startswith("env:") and value[4:] not in os.environ:
            # Webhooks and health checks run in this process: the reference must resolve here.
            refuse(f"credentials.{key}", f"environment variable {value[4:]} is not set")
        elif value.startswith("file:") and not Path(value[5:]).is_file():
            refuse(f"credentials.{key}", f"file {value[5:]} does not exist")
    if stored:
        with Session(db) as session:
            for key, name in stored:
                if session.get(StoredSecret, name) is None:
                    refuse(f"credentials.{key}", f"secret {name!r} is not in the secret store")
    for key in sorted(connection_in.options):
        if is_credential(key):
            refuse(f"options.{key}", "a credential; give it under credentials, by reference")
        elif key == "url":
            refuse("options.url", "give the base URL as url")
    if connection_in.mapping is not None:
        try:
            parse_mapping(connection_in.mapping, file=f"{connection_in.name}.mapping")
        except MappingError as exc:
            for problem in exc.problems:
                where = f" (line {problem.line})" if problem.line else ""
                refuse("mapping", f"{problem.field}: {problem.message}{where}")
        except ValidationError as exc:
            refuse("mapping", exc.message)
    return errors


def _settings(connection_in: ConnectionCreate) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if connection_in.rate_limit is not None:
        settings["rate_per_s"] = connection_in.rate_limit.per_s
        settings["burst"] = connection_in.rate_limit.burst
    if connection_in.polling_interval_s is not None:
        settings["poll_interval_s"] = connection_in.polling_interval_s
    return settings


def _replace_ownership(db: Engine, owner: str, owns: list[Ownership]) -> None:
    with db.begin() as conn:
        conn.execute(OWNERSHIP.delete().where(OWNERSHIP.c.owner == owner))
    for item in owns:
        sync_service.set_owner(
            db=db,
            entity=item.entity,
            field=item.field,
            owner=owner,
            on_violation=item.on_violation,
        )


def save(*, db: Engine, connection_in: ConnectionCreate, actor: str) -> tuple[ConnectionRead, bool]:
    """Create or replace a connection; (what is stored, whether it is new)."""
    errors = _problems(db, connection_in)
    if errors:
        raise ConnectionInvalid(errors)
    name = connection_in.name
    existed = exists(db=db, name=name)
    config: dict[str, Any] = {**connection_in.options, **connection_in.credentials}
    if connection_in.url is not None:
        config["url"] = connection_in.url
    sync_service.save_connection(
        db=db,
        name=name,
        kind=connection_in.kind,
        config=config,
        settings=_settings(connection_in),
        mapping_yaml=connection_in.mapping,
    )
    if connection_in.owns is not None:
        _replace_ownership(db, name, connection_in.owns)
    return record_saved(db=db, name=name, actor=actor, existed=existed), not existed


def exists(*, db: Engine, name: str) -> bool:
    with db.connect() as conn:
        found = conn.execute(sa.select(CONNECTION.c.name).where(CONNECTION.c.name == name))
        return found.first() is not None


def record_saved(*, db: Engine, name: str, actor: str, existed: bool) -> ConnectionRead:
    """Audit a saved connection as it is stored now (credentials only as references)."""
    saved = get(db=db, name=name)
    with Session(db) as session:
        audit.record(
            session,
            actor=actor,
            action="connection.update" if existed else "connection.create",
            object_type="connection",
            object_id=name,
            after=saved.model_dump(mode="json", exclude={"created_at", "updated_at", "polling"}),
        )
        session.commit()
    return saved


def _polling(plan: schedule.PollPlan | None) -> PollingRead:
    if plan is None:
        return PollingRead()
    shown = plan.as_dict()
    return PollingRead(
        last_poll_at=shown["last_poll_at"],
        last_outcome=shown["last_outcome"],
        last_error=shown["last_error"],
        failures=shown["failures"],
        next_poll_at=shown["next_poll_at"],
    )


def _read(row: Any, owns: list[Ownership], plan: schedule.PollPlan | None) -> ConnectionRead:
    config = dict(row.config or {})
    url = config.pop("url", None)
    credentials: dict[str, str] = {}
    options: dict[str, Any] = {}
    for key, value in config.items():
        if is_credential(key) or is_reference(value):
            # A value saved before its key was known as a credential is never shown.
            credentials[key] = value if is_reference(value) else "***"
        else:
            options[key] = value
    settings = dict(row.settings or {})
    rate = settings.get("rate_per_s")
    return ConnectionRead(
        name=row.name,
        kind=row.kind,
        url=url if isinstance(url, str) else None,
        credentials=credentials,
        options=options,
        rate_limit=RateLimit(per_s=rate, burst=settings.get("burst", 10.0)) if rate else None,
        polling_interval_s=settings.get("poll_interval_s"),
        owns=owns,
        mapping=parse_mapping(row.mapping_yaml).label if row.mapping_yaml else None,
        polling=_polling(plan),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _ownership(conn: sa.Connection, owner: str | None = None) -> dict[str, list[Ownership]]:
    stmt = sa.select(OWNERSHIP).order_by(OWNERSHIP.c.entity, OWNERSHIP.c.field)
    if owner is not None:
        stmt = stmt.where(OWNERSHIP.c.owner == owner)
    by_owner: dict[str, list[Ownership]] = {}
    for item in conn.execute(stmt):
        by_owner.setdefault(item.owner, []).append(
            Ownership(entity=item.entity, field=item.field, on_violation=item.on_violation)
        )
    return by_owner


def list_all(*, db: Engine) -> list[ConnectionRead]:
    """Every connection, with credential references (never values)."""
    with db.connect() as conn:
        rows = conn.execute(sa.select(CONNECTION).order_by(CONNECTION.c.name)).all()
        owned = _ownership(conn)
    plans = {p.connection: p for p in schedule.plans(db=db)}
    return [_read(row, owned.get(row.name, []), plans.get(row.name)) for row in rows]


def get(*, db: Engine, name: str) -> ConnectionRead:
    """One connection, with credential references (never values)."""
    with db.connect() as conn:
        row = conn.execute(sa.select(CONNECTION).where(CONNECTION.c.name == name)).first()
        owned = _ownership(conn, name)
    if row is None:
        raise NotFoundError(f"no connection {name!r}")
    plan = next(iter(schedule.plans(db=db, names=[name])), None)
    return _read(row, owned.get(name, []), plan)


def remove(
    *, db: Engine, name: str, actor: str, force: bool = False, forget_links: bool = False
) -> dict[str, int]:
    """Remove a connection (see :func:`spojka.sync.service.remove_connection`); the audit
    entry keeps what it was, with credentials as references, and what was removed."""
    before = get(db=db, name=name).model_dump(
        mode="json", exclude={"created_at", "updated_at", "polling"}
    )
    return sync_service.remove_connection(
        db=db, name=name, actor=actor, force=force, forget_links=forget_links, snapshot=before
    )
