"""Pruning the outbox: finished messages go after `[outbox] keep`, with what only they need."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, Table, func, select, update

from publisher.store.database import create_store_engine, migrate
from publisher.store.outbox import (
    NewMessage,
    Pruned,
    Status,
    already_sent,
    enqueue,
    load_segments,
    prune,
    save_segments,
)
from publisher.store.schema import bodies, outbox, segments

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
OLD, SHARED, NEW = b"o" * 16, b"s" * 16, b"n" * 16  # segment digests


def _queue(
    engine: Engine,
    body: bytes,
    recipient: str,
    key: str,
    *,
    at: datetime,
    shows: tuple[bytes, ...] = (),
) -> None:
    """One message of ``body`` (item ``key``), with the segments it ``shows``."""
    with engine.begin() as conn:
        save_segments(conn, {name: name * 4 for name in shows}, now=at)
        message = NewMessage(recipient, f"alert:{key}", (key,), f"<{key}.{recipient}@x.org>")
        enqueue(conn, body, [message], now=at)


def _finish(engine: Engine, recipient: str, status: Status, *, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.recipient_key == recipient)
            .values(status=status.value, finished_at=at)
        )


def _count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_finished_messages_go_and_waiting_ones_stay(engine: Engine) -> None:
    """Sent, failed and skipped rows finished before the limit go with their items and
    bodies; a row still waiting, and one finished later, stay with theirs."""
    for n, status in enumerate((Status.SENT, Status.FAILED, Status.SKIPPED)):
        _queue(engine, f"body {n}".encode(), f"{status}@example.org", f"i{n}", at=T0)
        _finish(engine, f"{status}@example.org", status, at=T0 + timedelta(hours=1))
    _queue(engine, b"waiting", "waiting@example.org", "i3", at=T0)
    _queue(engine, b"recent", "recent@example.org", "i4", at=T0)
    _finish(engine, "recent@example.org", Status.SENT, at=T0 + 2 * DAY)

    assert prune(engine, before=T0 + DAY) == Pruned(messages=3, items=3, bodies=3, segments=0)
    with engine.connect() as conn:
        assert sorted(conn.execute(select(outbox.c.recipient_key)).scalars()) == [
            "recent@example.org",
            "waiting@example.org",
        ]
        assert sorted(conn.execute(select(bodies.c.content)).scalars()) == [b"recent", b"waiting"]
        keys = ["sent@example.org", "waiting@example.org", "recent@example.org"]
        assert already_sent(conn, keys) == {
            "sent@example.org": set(),
            "waiting@example.org": {"i3"},
            "recent@example.org": {"i4"},
        }
    assert prune(engine, before=T0 + DAY) == Pruned()  # nothing more to do


def test_a_segment_stays_while_a_body_may_show_it(engine: Engine) -> None:
    """A segment goes once no body as recent as its last use is left: the one a new body
    shows again stays with it, the one only old bodies showed goes with them."""
    _queue(engine, b"old", "a@example.org", "i1", at=T0, shows=(OLD, SHARED))
    _queue(engine, b"new", "b@example.org", "i2", at=T0 + 10 * DAY, shows=(SHARED, NEW))
    _finish(engine, "a@example.org", Status.SENT, at=T0)

    # The new body, still waiting, keeps SHARED, which it used again; OLD goes.
    assert prune(engine, before=T0 + 5 * DAY).segments == 1
    with engine.connect() as conn:
        assert sorted(load_segments(conn, [OLD, SHARED, NEW])) == [NEW, SHARED]

    # A body still waiting keeps every segment used since it was queued, even past the limit.
    assert prune(engine, before=T0 + 20 * DAY).segments == 0
    _finish(engine, "b@example.org", Status.SENT, at=T0 + 10 * DAY)
    assert prune(engine, before=T0 + 20 * DAY) == Pruned(messages=1, items=1, bodies=1, segments=2)
    assert [_count(engine, t) for t in (outbox, bodies, segments)] == [0, 0, 0]


def test_segments_stored_before_the_migration_count_as_used_by_it(tmp_path: Path) -> None:
    """A store written before segments kept their last use: its segments are marked used
    when it is migrated, and kept with their bytes."""
    engine = create_store_engine(f"sqlite:///{tmp_path}/publisher.db")
    migrate(engine, "0007")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO segments (digest, content, created_at) VALUES (?, ?, ?)",
            (OLD, b"kept", "2025-01-01 00:00:00.000000"),
        )
    before = datetime.now(UTC)
    migrate(engine)
    with engine.connect() as conn:
        used_at = conn.execute(select(segments.c.used_at)).scalar_one()
        assert load_segments(conn, [OLD]) == {OLD: b"kept"}
    assert before - timedelta(seconds=1) <= used_at <= datetime.now(UTC)
    engine.dispose()
