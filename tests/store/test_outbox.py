from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, func, select

from publisher.store.outbox import (
    NewMessage,
    RetryPolicy,
    Status,
    already_sent,
    claim,
    enqueue,
    enqueue_many,
    mark_all_sent,
    mark_permanent,
    mark_sent,
    mark_skipped,
    mark_temporary,
    outbox,
    permanent_failures,
    status_counts,
)

T0 = datetime(2024, 12, 6, 8, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _message(
    recipient: str,
    key: str = "daily:2024-12-06",
    items: tuple[str, ...] = ("a", "b"),
) -> NewMessage:
    return NewMessage(recipient, key, items, f"<{key}.{recipient}@example.org>")


def test_a_period_is_queued_once_per_recipient(engine: Engine) -> None:
    """Queuing the same digest period twice (any case of the address) adds nothing."""
    with engine.begin() as conn:
        assert (
            enqueue(conn, b"body", [_message("a@example.org"), _message("b@example.org")], now=T0)
            == 2
        )
        again = NewMessage("A@Example.org", "daily:2024-12-06", ("a",), "<other@example.org>")
        assert enqueue(conn, b"other body", [again], now=T0) == 0
        assert status_counts(conn)[Status.QUEUED] == 2


def test_queued_items_are_remembered_per_recipient(engine: Engine) -> None:
    """already_sent gives each recipient's queued items, so no item goes twice to one person."""
    with engine.begin() as conn:
        enqueue(conn, b"x", [_message("a@example.org", items=("i1", "i2"))], now=T0)
        enqueue(conn, b"y", [_message("a@example.org", "alert:i3", ("i3",))], now=T0)
        sent = already_sent(conn, ["a@example.org", "b@example.org"])
    assert sent == {"a@example.org": {"i1", "i2", "i3"}, "b@example.org": set()}


def test_a_batch_keeps_the_first_message_of_a_period_and_only_its_items(engine: Engine) -> None:
    """Several bodies in one write behave as if queued one after the other: a second
    message for the same recipient and period (another of their rules) is left out with
    its items, and so is one already queued by an earlier write."""
    with engine.begin() as conn:
        enqueue(conn, b"earlier", [_message("old@example.org", items=("i0",))], now=T0)
        added = enqueue_many(
            conn,
            [
                (
                    b"rule one",
                    [_message("a@example.org", items=("i1",)), _message("b@example.org")],
                ),
                (b"rule two", [_message("A@example.org", items=("i2",))]),
                (b"rule three", [_message("old@example.org", items=("i3",))]),
                (b"rule one", [_message("c@example.org", "alert:i4", ("i4",))]),
            ],
            now=T0,
        )
        assert added == 3
        sent = already_sent(conn, ["a@example.org", "b@example.org", "old@example.org"])
        assert sent == {
            "a@example.org": {"i1"},
            "b@example.org": {"a", "b"},
            "old@example.org": {"i0"},
        }
        bodies_used = conn.execute(select(func.count(func.distinct(outbox.c.body_id)))).scalar_one()
        assert bodies_used == 2  # "earlier" and "rule one", stored once
        assert status_counts(conn)[Status.QUEUED] == 4


def test_a_claim_leases_rows_and_an_expired_lease_is_claimed_again(engine: Engine) -> None:
    """A worker that dies leaves its rows leased; after the lease they go to another worker."""
    with engine.begin() as conn:
        enqueue(conn, b"shared", [_message(f"r{i}@example.org") for i in range(5)], now=T0)
    with engine.begin() as conn:
        first = claim(conn, owner="w1", limit=3, lease=LEASE, now=T0)
    assert [c.body for c in first] == [b"shared"] * 3
    with engine.begin() as conn:
        second = claim(conn, owner="w2", limit=10, lease=LEASE, now=T0 + timedelta(minutes=1))
    assert len(second) == 2
    assert not {c.id for c in first} & {c.id for c in second}
    with engine.begin() as conn:
        later = claim(conn, owner="w3", limit=10, lease=LEASE, now=T0 + timedelta(minutes=7))
    assert {c.id for c in later} == {c.id for c in first} | {c.id for c in second}


def test_temporary_failures_back_off_then_fail_at_the_limit(engine: Engine) -> None:
    """4xx: queued again after a growing, jittered delay; failed after max_attempts."""
    policy = RetryPolicy(base=timedelta(minutes=1), ceiling=timedelta(hours=1), max_attempts=3)
    rng = random.Random(7)
    with engine.begin() as conn:
        enqueue(conn, b"m", [_message("a@example.org")], now=T0)
    now, waits = T0, []
    for attempt in (1, 2, 3):
        with engine.begin() as conn:
            [row] = claim(conn, owner="w", limit=1, lease=LEASE, now=now)
            status = mark_temporary(
                conn,
                row.id,
                owner="w",
                code=451,
                error="try later",
                now=now,
                policy=policy,
                rng=rng,
            )
            next_at = conn.execute(select(outbox.c.next_attempt_at)).scalar_one()
        if attempt < 3:
            assert status is Status.QUEUED
            waits.append(next_at - now)
            with engine.begin() as conn:
                assert (
                    claim(conn, owner="w", limit=1, lease=LEASE, now=next_at - timedelta(seconds=1))
                    == []
                )
            now = next_at
        else:
            assert status is Status.FAILED
    assert timedelta(seconds=30) <= waits[0] <= timedelta(minutes=1)
    assert timedelta(minutes=1) <= waits[1] <= timedelta(minutes=2)
    with engine.begin() as conn:
        row = conn.execute(select(outbox)).one()
        assert claim(conn, owner="w", limit=1, lease=LEASE, now=now + timedelta(days=1)) == []
    assert row.attempts == 3 and row.last_code == 451
    assert row.last_error.startswith("gave up after 3 attempts")


def test_sent_permanent_and_skipped_rows_are_never_claimed_again(engine: Engine) -> None:
    """A 250, a 5xx and an unsubscribe each end a row; 5xx count toward suppression."""
    with engine.begin() as conn:
        enqueue(conn, b"m", [_message(f"r{i}@example.org") for i in range(3)], now=T0)
        ok, bounced, gone = claim(conn, owner="w", limit=3, lease=LEASE, now=T0)
        mark_sent(conn, ok.id, now=T0)
        mark_permanent(conn, bounced.id, owner="w", code=550, error="no such user", now=T0)
        mark_skipped(conn, gone.id, owner="w", reason="unsubscribed", now=T0)
        counts = status_counts(conn)
        assert claim(conn, owner="w", limit=3, lease=LEASE, now=T0 + timedelta(days=1)) == []
        assert permanent_failures(conn, "R1@example.org") == 1
        assert permanent_failures(conn, "r0@example.org") == 0
    assert counts[Status.SENT] == counts[Status.FAILED] == counts[Status.SKIPPED] == 1


def test_answers_recorded_together_are_each_marked_sent_at_their_time(engine: Engine) -> None:
    with engine.begin() as conn:
        enqueue(conn, b"m", [_message(f"r{i}@example.org") for i in range(4)], now=T0)
        claimed = claim(conn, owner="w", limit=4, lease=LEASE, now=T0)
    at = [T0 + timedelta(seconds=n, microseconds=123_456) for n in range(3)]
    with engine.begin() as conn:
        mark_all_sent(conn, [(row.id, when) for row, when in zip(claimed, at, strict=False)])
        mark_all_sent(conn, [])
        rows = conn.execute(select(outbox).order_by(outbox.c.id)).all()
    assert [row.status for row in rows] == [Status.SENT.value] * 3 + [Status.SENDING.value]
    assert [row.finished_at for row in rows[:3]] == at
    assert all(row.attempts == 1 and row.last_code == 250 for row in rows[:3])
    assert all(row.lease_owner is None and row.lease_until is None for row in rows[:3])
    assert rows[3].lease_owner == "w"


@pytest.mark.postgresql
def test_concurrent_workers_on_postgresql_never_claim_the_same_row(postgresql_url: str) -> None:
    """Four workers claiming at once with SKIP LOCKED share 400 rows without overlap."""
    from publisher.store import open_store

    engine = open_store(postgresql_url)
    with engine.begin() as conn:
        conn.execute(outbox.delete())
        enqueue(conn, b"m", [_message(f"r{i}@example.org", "weekly:x") for i in range(400)], now=T0)
    seen: list[list[int]] = [[] for _ in range(4)]

    def work(n: int) -> None:
        worker = create_engine(postgresql_url)
        while True:
            with worker.begin() as conn:
                rows = claim(conn, owner=f"w{n}", limit=7, lease=LEASE, now=T0)
            if not rows:
                break
            seen[n].extend(r.id for r in rows)
        worker.dispose()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    claimed = [i for ids in seen for i in ids]
    assert len(claimed) == 400 == len(set(claimed))
    engine.dispose()
