"""Quality tables: source records with their checks, clusters with golden records, the
review queue, merge/split events (for undo) and score snapshots (for trends)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from spojka.core.db import Base, utcnow


class QualityCluster(Base):
    """One real-world entity: its golden record and where each value came from."""

    __tablename__ = "quality_cluster"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    entity: Mapped[str] = mapped_column(sa.String(20), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="active")  # active | merged
    merged_into: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    golden: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QualityRecord(Base):
    """A record as one system holds it, normalised and checked."""

    __tablename__ = "quality_record"
    __table_args__ = (sa.UniqueConstraint("entity", "system", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(20), index=True)
    system: Mapped[str] = mapped_column(sa.String(40))
    external_id: Mapped[str] = mapped_column(sa.String(200))
    values: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    normalized: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    score: Mapped[float] = mapped_column(sa.Float, default=100.0)
    source_updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    cluster_id: Mapped[str | None] = mapped_column(
        sa.String(36), sa.ForeignKey("quality_cluster.id"), index=True, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def key(self) -> str:
        """The id the matcher knows this record by."""
        return str(self.id)


class QualityReview(Base):
    """A candidate pair between the thresholds, waiting for a person."""

    __tablename__ = "quality_review"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(20), index=True)
    left_record_id: Mapped[int] = mapped_column(sa.ForeignKey("quality_record.id"))
    right_record_id: Mapped[int] = mapped_column(sa.ForeignKey("quality_record.id"))
    score: Mapped[float] = mapped_column(sa.Float)
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    status: Mapped[str] = mapped_column(sa.String(20), default="open", index=True)
    decided_by: Mapped[str | None] = mapped_column(sa.String(120), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QualityMergeEvent(Base):
    """A merge, split or undo, with the memberships before and after (so it can be undone)."""

    __tablename__ = "quality_merge_event"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(20))
    action: Mapped[str] = mapped_column(sa.String(20))  # merge | split | undo
    actor: Mapped[str] = mapped_column(sa.String(120))
    reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    before: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    undone_by: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class QualityScoreSnapshot(Base):
    """Average record score per entity and system at one moment: the trend line."""

    __tablename__ = "quality_score_snapshot"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(20))
    system: Mapped[str] = mapped_column(sa.String(40))
    records: Mapped[int] = mapped_column(sa.Integer)
    average: Mapped[float] = mapped_column(sa.Float)
    invalid: Mapped[int] = mapped_column(sa.Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class QualityDuplicateLink(Base):
    """A record that duplicates another record of the same system: linked to the cluster
    (the canonical id both external ids resolve to) and flagged for a person. Never deleted
    by Spojka; a person decides in the system itself."""

    __tablename__ = "quality_duplicate_link"
    __table_args__ = (sa.UniqueConstraint("entity", "system", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(20))
    system: Mapped[str] = mapped_column(sa.String(40))
    external_id: Mapped[str] = mapped_column(sa.String(200))
    cluster_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    survivor_external_id: Mapped[str] = mapped_column(sa.String(200))
    sync_canonical_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="flagged")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
