"""One `publisher run` per PostgreSQL database holds the scheduler; another takes over when
it stops or dies, and until then only sends and serves."""

from __future__ import annotations

import asyncio
import time as clock_time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from publisher.scheduling import Service
from publisher.scheduling.leader import SchedulerLock
from publisher.store import open_store
from tests.delivery.conftest import MailServer
from tests.scheduling.test_service import WAIT_SECONDS, _alert_service


@pytest.fixture
def postgresql(postgresql_url: str) -> Iterator[Engine]:
    """A migrated store on PostgreSQL (the lock only exists there)."""
    engine = create_engine(postgresql_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    engine = open_store(postgresql_url)
    yield engine
    engine.dispose()


def test_the_lock_has_one_holder_and_passes_on_when_released(postgresql: Engine) -> None:
    """A second process cannot take the lock until the first lets go."""
    other = create_engine(postgresql.url)
    first, second = SchedulerLock(postgresql), SchedulerLock(other)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.try_acquire()  # asking again while holding it keeps it
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()
        other.dispose()


def test_the_lock_passes_on_when_its_holder_s_session_dies(postgresql: Engine) -> None:
    """A holder whose database session ends (its process killed) loses the lock to the next."""
    other = create_engine(postgresql.url)
    first, second = SchedulerLock(postgresql), SchedulerLock(other)
    try:
        assert first.try_acquire()
        with other.connect() as conn:  # what the operating system does to a killed process
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
            )
        deadline = clock_time.monotonic() + WAIT_SECONDS
        while not second.try_acquire():  # the killed session ends a moment later
            assert clock_time.monotonic() < deadline, "the lock never passed on"
            clock_time.sleep(0.05)
        assert not first.still_held()
    finally:
        first.release()
        second.release()
        other.dispose()


def test_sqlite_always_leads(engine: Engine) -> None:
    """With a single-machine store the one process leads, no lock asked."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the SQLite case")
    lock = SchedulerLock(engine)
    assert lock.try_acquire() and lock.held and not lock.shared


def test_a_standing_by_service_takes_over_when_the_leader_stops(
    tmp_path: Path, postgresql: Engine, server: MailServer
) -> None:
    """Two services on one database: one leads with the whole job table, the other only
    sends; when the leader stops, the other takes over within a few polls."""
    poll = timedelta(seconds=0.2)
    first, _ = _alert_service(tmp_path / "a", postgresql, server, leader_poll=poll)
    second, _ = _alert_service(tmp_path / "b", postgresql, server, leader_poll=poll)

    def job_ids(service: Service) -> list[str]:
        assert service.scheduler is not None
        return sorted(job.id for job in service.scheduler.get_jobs())

    async def until(condition: object, what: str) -> None:
        deadline = clock_time.monotonic() + WAIT_SECONDS
        while not condition():  # type: ignore[operator]
            assert clock_time.monotonic() < deadline, what
            await asyncio.sleep(0.05)

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        a = asyncio.create_task(first.run(host="127.0.0.1", port=0))
        await until(lambda: first.leading, "the first service never led")
        b = asyncio.create_task(second.run(host="127.0.0.1", port=0))
        await until(lambda: second.scheduler is not None and second.scheduler.running, "b")
        await asyncio.sleep(0.6)  # a few polls: it must not lead while the first does
        leader_jobs, standby_jobs = job_ids(first), job_ids(second)
        assert not second.leading
        first.request_stop()
        await asyncio.wait_for(a, WAIT_SECONDS)
        await until(lambda: second.leading, "the second service never took over")
        took_over = job_ids(second)
        second.request_stop()
        await asyncio.wait_for(b, WAIT_SECONDS)
        return leader_jobs, standby_jobs, took_over

    leader_jobs, standby_jobs, took_over = asyncio.run(scenario())
    assert leader_jobs == ["collect:newsroom", "leader", "prune", "reload", "retry"]
    assert standby_jobs == ["leader", "retry"]
    assert took_over == leader_jobs
