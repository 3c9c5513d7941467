"""The durable store: SQLAlchemy Core tables, Alembic migrations, SQLite or PostgreSQL."""

from publisher.store.database import create_store_engine, migrate, open_store
from publisher.store.items import SaveCounts, StoredItem, StoredTranslation, load_items, save_items

__all__ = [
    "SaveCounts",
    "StoredItem",
    "StoredTranslation",
    "create_store_engine",
    "load_items",
    "migrate",
    "open_store",
    "save_items",
]
