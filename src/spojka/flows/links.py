"""Deal ↔ project ↔ order in the sync engine's link table (one canonical id per engagement)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from spojka.core.db import utcnow
from spojka.sync.store import LINK, insert_ignore

ENGAGEMENT = "engagement"
_NAMESPACE = uuid.UUID("6f1b1c52-6a55-4a0e-9d0f-51a7c0a1f001")


def canonical_for(conn: Connection, system: str, entity: str, external_id: str) -> str | None:
    row = conn.execute(
        sa.select(LINK.c.canonical_id).where(
            LINK.c.system == system, LINK.c.entity == entity, LINK.c.external_id == external_id
        )
    ).first()
    return None if row is None else str(row.canonical_id)


def engagement_id(conn: Connection, deal_system: str, deal_id: str) -> str:
    """The canonical id of the deal's engagement: the one already linked, else a stable new one."""
    found = canonical_for(conn, deal_system, "opportunity", deal_id)
    return found or uuid.uuid5(_NAMESPACE, f"{deal_system}:{deal_id}").hex


def link(conn: Connection, canonical_id: str, system: str, entity: str, external_id: str) -> None:
    conn.execute(
        insert_ignore(conn, LINK).values(
            system=system,
            entity=entity,
            external_id=str(external_id),
            canonical_id=canonical_id,
            updated_at=utcnow(),
        )
    )


def linked(conn: Connection, canonical_id: str) -> dict[str, str]:
    """``"system/entity" → external id`` for everything linked to one canonical id."""
    rows = conn.execute(
        sa.select(LINK.c.system, LINK.c.entity, LINK.c.external_id).where(
            LINK.c.canonical_id == canonical_id
        )
    )
    return {f"{r.system}/{r.entity}": str(r.external_id) for r in rows}


def engagements(conn: Connection) -> list[dict[str, Any]]:
    """Every engagement that has a project: deal, project and order ids."""
    rows = conn.execute(
        sa.select(LINK.c.canonical_id, LINK.c.system, LINK.c.entity, LINK.c.external_id).where(
            LINK.c.canonical_id.in_(
                sa.select(LINK.c.canonical_id).where(
                    LINK.c.system == "redmine", LINK.c.entity == "project"
                )
            )
        )
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        item = found.setdefault(str(row.canonical_id), {"canonical_id": str(row.canonical_id)})
        item[f"{row.system}/{row.entity}"] = str(row.external_id)
    return list(found.values())


# An engagement belongs to one customer: the row (spojka, engagement, <engagement id>) carries
# the customer's canonical id (the one its IČO and its records in each system are linked to).


def attach_to_account(conn: Connection, account_id: str, engagement: str) -> None:
    link(conn, account_id, "spojka", "engagement", engagement)


def account_of(conn: Connection, engagement: str) -> str | None:
    return canonical_for(conn, "spojka", "engagement", engagement)


def engagements_of(conn: Connection, account_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(LINK.c.external_id).where(
            LINK.c.canonical_id == account_id,
            LINK.c.system == "spojka",
            LINK.c.entity == "engagement",
        )
    )
    return [str(r.external_id) for r in rows]
