"""Group commit of the worker's records (publisher.delivery._group), on each database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine

from publisher.delivery._group import Group
from publisher.delivery._slot import Slot
from publisher.store.outbox import NewMessage, Status, claim, enqueue, mark_all_sent, status_counts

T0 = datetime(2024, 12, 6, 8, 0, tzinfo=UTC)


def _claimed(engine: Engine, count: int) -> list[int]:
    with engine.begin() as conn:
        enqueue(
            conn,
            b"Subject: x\r\n\r\nx\r\n",
            [NewMessage(f"r{i}@example.net", "k", (), f"<{i}@example.org>") for i in range(count)],
            now=T0,
        )
        return [
            row.id
            for row in claim(conn, owner="w", limit=count, lease=timedelta(minutes=5), now=T0)
        ]


class Writes:
    """The groups written, each marked sent (or rolled back when ``fail``)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.groups: list[list[int]] = []
        self.fail = fail

    def __call__(self, conn: Connection, values: Sequence[int]) -> None:
        with conn.begin():
            mark_all_sent(conn, [(value, T0) for value in values])
            self.groups.append(sorted(values))
            if self.fail:
                raise RuntimeError("the store went away")


async def _answer(group: Group[int], value: int, *, after: float, recorded: bool = True) -> float:
    """Expect an answer, get it ``after`` seconds, record it: the seconds until committed."""
    with group.expect() as answer:
        await asyncio.sleep(after)
        started = time.monotonic()
        if recorded:
            await answer.record(value)
    return time.monotonic() - started


def _sent(engine: Engine) -> int:
    with engine.connect() as conn:
        return status_counts(conn).get(Status.SENT, 0)


def test_the_answers_of_a_round_are_committed_together(engine: Engine) -> None:
    ids = _claimed(engine, 4)
    writes = Writes()

    async def go() -> None:
        slot = Slot(engine)
        group = Group(slot, writes, patience=10.0)
        await asyncio.gather(*(_answer(group, i, after=0.01 * n) for n, i in enumerate(ids)))
        await slot.aclose()

    asyncio.run(go())
    assert writes.groups == [sorted(ids)]
    assert _sent(engine) == 4


def test_an_answer_waits_for_a_slow_one_no_longer_than_its_patience(engine: Engine) -> None:
    fast, slow = _claimed(engine, 2)
    writes = Writes()

    async def go() -> list[float]:
        slot = Slot(engine)
        group = Group(slot, writes, patience=0.05)
        waited = await asyncio.gather(
            _answer(group, fast, after=0), _answer(group, slow, after=1.0)
        )
        await slot.aclose()
        return waited

    waited_fast, _ = asyncio.run(go())
    assert writes.groups == [[fast], [slow]]
    assert 0.04 < waited_fast < 0.5
    assert _sent(engine) == 2


def test_an_answer_not_recorded_holds_up_no_one(engine: Engine) -> None:
    """A send that failed (recorded elsewhere) ends its wait: the others go at once."""
    recorded, failed = _claimed(engine, 2)
    writes = Writes()

    async def go() -> float:
        slot = Slot(engine)
        group = Group(slot, writes, patience=10.0)
        waited, _ = await asyncio.gather(
            _answer(group, recorded, after=0),
            _answer(group, failed, after=0.05, recorded=False),
        )
        await slot.aclose()
        return waited

    assert asyncio.run(go()) < 1.0
    assert writes.groups == [[recorded]]


def test_a_failed_commit_fails_every_answer_of_its_group_and_records_none(engine: Engine) -> None:
    ids = _claimed(engine, 3)
    writes = Writes(fail=True)

    async def go() -> list[float | BaseException]:
        slot = Slot(engine)
        group = Group(slot, writes, patience=10.0)
        outcomes = await asyncio.gather(
            *(_answer(group, i, after=0) for i in ids), return_exceptions=True
        )
        await slot.aclose()
        return outcomes

    outcomes = asyncio.run(go())
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
    assert writes.groups == [sorted(ids)]
    assert _sent(engine) == 0
