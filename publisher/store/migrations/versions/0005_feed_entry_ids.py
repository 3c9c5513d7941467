"""feed entry ids and item metadata change times

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.store.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(
            sa.Column(
                "meta_changed_at", publisher.store.schema.UtcDateTime(timezone=True), nullable=True
            )
        )
        batch.add_column(sa.Column("entry_id", sa.String(length=400), nullable=True))
    op.create_index(op.f("ix_items_changed_at"), "items", ["changed_at"], unique=False)
    op.create_index(op.f("ix_items_entry_id"), "items", ["entry_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_items_entry_id"), table_name="items")
    op.drop_index(op.f("ix_items_changed_at"), table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("entry_id")
        batch.drop_column("meta_changed_at")
