"""Test data and setup shared by the sync integration tests."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from spojka.core.db import make_engine, upgrade
from spojka.sync import service

CRM_MAPPING = """
mapping: crm
version: 1
streams:
  accounts:
    entity: Firma
    direction: {direction}
    fields:
      name: nazev
      ico: ic
      email: email
"""

TARGET_MAPPING = """
mapping: erp
version: 1
streams:
  accounts:
    entity: Account
    direction: both
    fields:
      name: name
      ico: ico
      email: email
"""

_NAMES = ["Novák", "Svoboda", "Dvořák", "Černý", "Procházka", "Kučera", "Horváth", "Kováč"]


def ico(n: int) -> str:
    """A valid IČO (mod-11 check digit) for a running number."""
    base = f"{n % 10_000_000:07d}"
    total = sum(int(d) * w for d, w in zip(base, range(8, 1, -1), strict=True))
    return base + str((11 - total % 11) % 10)


def write_accounts(
    folder: Path, count: int, *, start: int = 0, name: str = "accounts", bad: set[int] | None = None
) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(start, start + count):
        rows.append(
            {
                "id": str(i),
                "nazev": f"{_NAMES[i % len(_NAMES)]} a syn s.r.o. {i}",
                "ic": "12345678" if bad and i in bad else ico(i + 1000),
                "email": f"obchod{i}@firma{i}.cz",
                "zmeneno": f"2026-01-{1 + i // 5000 % 28:02d}T{i // 3600 % 24:02d}:"
                f"{i // 60 % 60:02d}:{i % 60:02d}",
            }
        )
    with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def setup_db(db_url: str) -> sa.Engine:
    upgrade(db_url)
    return make_engine(db_url)


def connect_crm(
    db: sa.Engine, folder: Path, *, direction: str = "in", page_size: int = 500
) -> None:
    service.save_connection(
        db=db,
        name="crm",
        kind="file",
        config={
            "path": str(folder),
            "streams": {
                "accounts": {"entity": "Account", "cursor_field": "zmeneno", "page_size": page_size}
            },
        },
        mapping_yaml=CRM_MAPPING.format(direction=direction),
    )


def connect_erp(
    db: sa.Engine,
    base_url: str,
    *,
    settings: dict[str, Any] | None = None,
    secret: str = "erp-secret",
) -> None:
    service.save_connection(
        db=db,
        name="erp",
        kind="test-http",
        config={"base_url": base_url, "streams": {"accounts": "Account"}, "webhook_secret": secret},
        settings=settings or {"max_attempts": 3, "retry_base_s": 0.01, "retry_cap_s": 0.05},
        mapping_yaml=TARGET_MAPPING,
    )


def count(db: sa.Engine, table: str, where: str = "1=1") -> int:
    with db.connect() as conn:
        return int(
            conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar() or 0
        )


def edit_csv(folder: Path, record_id: str, **changes: str) -> None:
    """Change one record of ``accounts.csv`` in place, with a newer change time."""
    path = folder / "accounts.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row["id"] == record_id:
            row.update(changes, zmeneno="2026-02-01T08:00:00")
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
