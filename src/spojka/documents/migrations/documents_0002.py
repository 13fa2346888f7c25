"""documents: where reading each intake mailbox stopped (IMAP UID checkpoint)

Revision ID: documents_0002
Revises: documents_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "documents_0002"
down_revision = "documents_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents_mailbox_checkpoint",
        sa.Column("mailbox", sa.String(300), primary_key=True),
        sa.Column("checkpoint", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("documents_mailbox_checkpoint")
