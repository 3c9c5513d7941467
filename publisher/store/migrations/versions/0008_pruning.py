"""what pruning the outbox needs: when a segment was last used, and indexes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from publisher.store.schema import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.alter_column("created_at", new_column_name="used_at")
    # Until now a segment kept the time it was first written, not its last use: count
    # every stored one used now, so that pruning keeps it while a body may show it.
    stored = sa.table("segments", sa.column("used_at", UtcDateTime()))
    op.execute(stored.update().values(used_at=datetime.now(UTC)))
    op.create_index(op.f("ix_segments_used_at"), "segments", ["used_at"])
    op.create_index(op.f("ix_bodies_created_at"), "bodies", ["created_at"])
    op.create_index(op.f("ix_outbox_finished_at"), "outbox", ["finished_at"])
    op.create_index(op.f("ix_outbox_body_id"), "outbox", ["body_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_body_id"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_finished_at"), table_name="outbox")
    op.drop_index(op.f("ix_bodies_created_at"), table_name="bodies")
    op.drop_index(op.f("ix_segments_used_at"), table_name="segments")
    with op.batch_alter_table("segments") as batch:
        batch.alter_column("used_at", new_column_name="created_at")
