"""The tables. Alembic migrations in ``migrations/`` create them; a test keeps the two equal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL.

    SQLite has no time-zone type: values are stored as UTC and given their zone back
    when read, so no naive datetime ever leaves the store.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row per news item. `id` is ours: assigned at first sight, never changed.
items = Table(
    "items",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("source", String(100), nullable=False),
    Column("source_key", Text, nullable=False),
    Column("published", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime),
    Column("issuer", String(200)),
    Column("fields_of_work", JSON, nullable=False),
    Column("countries", JSON, nullable=False),
    Column("item_hash", String(64), nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("origin", Text, nullable=False, server_default=""),
    # When the item's own data (dates, issuer, tags) last changed after first_seen;
    # NULL while it never has. `changed_at` also moves with any translation.
    Column("meta_changed_at", UtcDateTime),
    # The feeds' entry id (a tag: URI), assigned once and never changed.
    Column("entry_id", String(400)),
    UniqueConstraint("source", "source_key"),
    Index(None, "published"),
    Index(None, "first_seen"),
    Index(None, "changed_at"),
    Index(None, "entry_id", unique=True),
)

# One row per language of an item. `changed_at` moves only when the text changes.
translations = Table(
    "translations",
    metadata,
    Column("item_id", String(200), ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("lang", String(35), primary_key=True),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("url", Text),
    Column("content_hash", String(64), nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
)

# Tags as rows, so that "every item of field X or country Y" is an index look-up.
item_tags = Table(
    "item_tags",
    metadata,
    Column("item_id", String(200), ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # "field" | "country"
    Column("value", String(200), primary_key=True),
    Index(None, "kind", "value"),
)

# What each source wants back next time (ETag, Last-Modified) and how its last run went.
source_state = Table(
    "source_state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("state", JSON, nullable=False),
    Column("last_run_at", UtcDateTime),
    Column("last_success_at", UtcDateTime),
    Column("last_error", Text),
)

# One row per collection of one source: the history `publisher status` shows.
source_runs = Table(
    "source_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("new", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("not_modified", Integer, nullable=False),  # 1 when the source answered 304
    Column("error", Text),
    Column("problems", JSON, nullable=False),
    Index(None, "source", "started_at"),
)

# Addresses that are never mailed again: unsubscribed, bounced, complained or set by hand.
# Keyed by the lower-cased address; the first reason recorded is kept.
suppressions = Table(
    "suppressions",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("reason", String(16), nullable=False),  # unsubscribed|bounced|complained|manual
    Column("source", String(32), nullable=False),  # one-click|web|mailto|admin|smtp|…
    Column("created_at", UtcDateTime, nullable=False),
    Column("detail", Text),
    CheckConstraint(
        "reason IN ('unsubscribed', 'bounced', 'complained', 'manual')",
        name="ck_suppressions_reason",
    ),
)

_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite's ROWID alias is INTEGER

# The outbox (see publisher/store/outbox.py). A body shared by many recipients is kept once.
bodies = Table(
    "bodies",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "created_at"),  # pruning finds the old ones
)

# What many bodies show alike (an item's block), stored once and named by a digest of
# its bytes; a body names the segments it shows (publisher.delivery.message).
segments = Table(
    "segments",
    metadata,
    Column("digest", LargeBinary(16), primary_key=True),
    Column("content", LargeBinary, nullable=False),
    # When a planning pass last wrote a body that shows it: pruning keeps a segment as
    # long as a body as recent as that is kept.
    Column("used_at", UtcDateTime, nullable=False),
    Index(None, "used_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", _ID, primary_key=True),
    Column(
        "body_id",
        _ID,
        ForeignKey("bodies.id"),
        nullable=False,
    ),
    Column("recipient", String(320), nullable=False),
    Column("recipient_key", String(320), nullable=False),  # lower-cased, for look-ups
    Column("message_id", String(250), nullable=False, unique=True),
    Column("dedupe_key", String(200), nullable=False),
    Column("item_ids", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("lease_owner", String(100)),
    Column("lease_until", UtcDateTime),
    Column("last_code", Integer),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    UniqueConstraint("recipient_key", "dedupe_key"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "recipient_key", "status"),
    Index(None, "finished_at"),  # pruning finds the old ones
    Index(None, "body_id"),  # and the bodies no row needs
)

# Every item queued for a recipient, so that no one gets the same item twice.
sent_items = Table(
    "sent_items",
    metadata,
    Column("recipient_key", String(320), primary_key=True),
    Column("item_id", String(200), primary_key=True),
    Column("outbox_id", _ID, nullable=False),
)

# When each address first appeared in subscriptions.yaml: items collected before that
# are the back catalogue, which a new subscriber is not sent.
subscriber_state = Table(
    "subscriber_state",
    metadata,
    Column("recipient_key", String(320), primary_key=True),
    Column("first_seen_at", UtcDateTime, nullable=False),
)

# Edits of subscriptions.yaml an administrator confirmed (`publisher check --confirm`)
# although they multiply the recipients of the next send: the file's SHA-256.
confirmations = Table(
    "confirmations",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("confirmed_at", UtcDateTime, nullable=False),
)
