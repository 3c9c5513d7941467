"""Alembic environment: the engine comes from ``publisher.store.database.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from publisher.store.schema import metadata

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through publisher.store.database.migrate()")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
