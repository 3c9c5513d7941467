"""confirmed subscriptions edits

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.store.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "confirmations",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "confirmed_at", publisher.store.schema.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_confirmations")),
    )


def downgrade() -> None:
    op.drop_table("confirmations")
