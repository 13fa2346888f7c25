"""documents: stored documents (by content hash), their versions, per-supplier hints

Revision ID: documents_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "documents_0001"
down_revision = None
branch_labels = ("documents",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "documents_document",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("filename", sa.String(500), nullable=False),
        sa.Column("stored_path", sa.String(1000), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("read_path", sa.String(8)),
        sa.Column("supplier_key", sa.String(40)),
        sa.Column("number", sa.String(100)),
        sa.Column("total_with_vat", sa.Numeric(18, 2)),
        sa.Column("duplicate_of_id", sa.Integer, sa.ForeignKey("documents_document.id")),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_documents_document_supplier_key", "documents_document", ["supplier_key"])
    op.create_table(
        "documents_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "document_id", sa.Integer, sa.ForeignKey("documents_document.id"), nullable=False
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("invoice", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("document_id", "version"),
    )
    op.create_index("ix_documents_version_document_id", "documents_version", ["document_id"])
    op.create_table(
        "documents_supplier_hint",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("supplier_key", sa.String(40), nullable=False),
        sa.Column("field", sa.String(60), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("document_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("supplier_key", "field", "version"),
    )
    op.create_index(
        "ix_documents_supplier_hint_supplier_key", "documents_supplier_hint", ["supplier_key"]
    )


def downgrade() -> None:
    op.drop_table("documents_supplier_hint")
    op.drop_table("documents_version")
    op.drop_table("documents_document")
