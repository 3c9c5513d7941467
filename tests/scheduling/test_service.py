"""The service's passes over a real store and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import socket
import time as clock_time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import httpx
import pytest
from sqlalchemy import Engine, select

from publisher.delivery import SendResult, SmtpTransport, Transport
from publisher.delivery.planning import PlanReport, plan
from publisher.rendering.emails import EmailRenderer
from publisher.scheduling import ListenError, Service
from publisher.settings import Settings
from publisher.store.schema import items, outbox
from publisher.subscriptions import Subscriptions, parse_subscriptions
from publisher.taxonomy import load_taxonomy
from tests.delivery.conftest import MailServer

REPO = Path(__file__).resolve().parents[2]
NINE = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]
WAIT_SECONDS = 8.0
DAILY = """\
subscribers:
  - email: desk@example.org
    timezone: Asia/Tashkent
    send_at: "09:00"
    frequency: daily
"""
IMMEDIATE = """\
subscribers:
  - email: analyst@example.org
    locale: ru
    fallback_locales: [en]
    timezone: Asia/Tashkent
    fields_of_work: [policing, cyber-ict-security]
    countries: [UZ, central-asia]
    frequency: immediate
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _settings(engine: Engine, server: MailServer, content: Path) -> Settings:
    return Settings.model_validate(
        {
            "base_url": "https://news.example.org",
            "database_url": engine.url.render_as_string(hide_password=False),
            "secret_key": "scheduling-test-key",
            "sender": {"from": "OSCE News <news@example.org>"},
            "smtp": server.settings(),
            "sources": [{"name": "newsroom", "kind": "folder", "path": content}],
            "feeds": {"out_dir": content.parent / "feeds"},
            "locales": ["en", "ru"],  # fewer feeds to build at start
        }
    )


def _subscriptions(text: str) -> Subscriptions:
    return parse_subscriptions(
        text, path="subscriptions.yaml", taxonomy=load_taxonomy(), locales=NINE
    )


def _renderer(settings: Settings) -> Callable[[Subscriptions], EmailRenderer]:
    def make(subscriptions: Subscriptions) -> EmailRenderer:
        return EmailRenderer(
            taxonomy=subscriptions.taxonomy, base_url=settings.base_url, organisation="OSCE News"
        )

    return make


def _service(
    settings: Settings,
    engine: Engine,
    subscriptions: Subscriptions,
    clock: Callable[[], datetime],
    *,
    transport: Callable[[], AbstractAsyncContextManager[Transport]] | None = None,
    stop_timeout: timedelta = timedelta(seconds=WAIT_SECONDS),
    leader_poll: timedelta = timedelta(seconds=5),
) -> Service:
    def smtp() -> AbstractAsyncContextManager[Transport]:
        return SmtpTransport(settings.smtp)

    return Service(
        settings,
        engine,
        taxonomy=load_taxonomy(),
        subscriptions=lambda: subscriptions,
        renderer=_renderer(settings),
        transport=transport or smtp,
        clock=clock,
        stop_timeout=stop_timeout,
        leader_poll=leader_poll,
    )


class GatedTransport:
    """The real SMTP transport, whose sends wait until the test opens a gate."""

    def __init__(self, inner: SmtpTransport, gate: asyncio.Event, waiting: asyncio.Event) -> None:
        self._inner, self._gate, self._waiting = inner, gate, waiting

    async def __aenter__(self) -> GatedTransport:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._inner.aclose()

    async def send(self, *, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        self._waiting.set()
        await self._gate.wait()
        return await self._inner.send(sender=sender, recipients=recipients, message=message)


def _alert_service(
    tmp_path: Path, engine: Engine, server: MailServer, **options: Any
) -> tuple[Service, Settings]:
    """A service whose immediate subscriber subscribed a minute ago, before the collection."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    settings = _settings(engine, server, content)
    subscriptions = _subscriptions(IMMEDIATE)
    plan(
        engine,
        subscriptions,
        renderer=_renderer(settings)(subscriptions),
        settings=settings,
        now=datetime.now(UTC) - timedelta(minutes=1),
    )
    return _service(settings, engine, subscriptions, lambda: datetime.now(UTC), **options), settings


def _digest_keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        keys = conn.execute(select(outbox.c.dedupe_key).order_by(outbox.c.id)).scalars()
        return [key for key in keys if key.startswith("daily:")]


def test_a_restart_after_three_days_sends_one_digest_covering_the_gap(
    tmp_path: Path, engine: Engine, server: MailServer
) -> None:
    """Down for three days with new items: the start pass queues and sends one digest."""
    content, held = tmp_path / "content", tmp_path / "held"
    shutil.copytree(REPO / "content", content)
    held.mkdir()
    for path in content.glob("2025-*.md"):  # these items arrive later, during the outage
        path.rename(held / path.name)
    settings = _settings(engine, server, content)
    subscriptions = _subscriptions(DAILY)
    t0 = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)  # 08:00 in Tashkent, before the 09:00 digest
    clock = Clock(t0)
    service = _service(settings, engine, subscriptions, clock)

    async def scenario() -> tuple[PlanReport | None, PlanReport | None]:
        await service.run_pass()  # registers the subscriber
        await service.collect_source("newsroom")
        clock.now = t0 + timedelta(hours=1)  # 09:00: the day's digest
        first = await service.run_pass()
        assert first.planned == PlanReport(digests=1) and first.delivered.sent == 1
        for path in held.iterdir():
            path.rename(content / path.name)
        clock.now = t0 + timedelta(hours=2)  # new items, then the service goes down
        await service.collect_source("newsroom")
        clock.now = t0 + timedelta(days=3, hours=5)  # restarted on 6 March, 13:00 Tashkent
        start = await service.run_pass()
        again = await service.run_pass()
        return start.planned, again.planned

    start, again = asyncio.run(scenario())
    assert start == PlanReport(digests=1)  # one digest, not one per missed day
    assert again == PlanReport()
    assert _digest_keys(engine) == ["daily:2025-03-03", "daily:2025-03-06"]
    assert len(server.handler.messages) == 2
    # Planning alone, with the clock pinned later still, finds nothing more to queue.
    later = plan(
        engine,
        subscriptions,
        renderer=_renderer(settings)(subscriptions),
        settings=settings,
        now=t0 + timedelta(days=3, hours=8),
    )
    assert later == PlanReport()
    with engine.connect() as conn:
        first, gap = (
            set(ids)
            for ids in conn.execute(
                select(outbox.c.item_ids)
                .where(outbox.c.recipient == "desk@example.org")
                .order_by(outbox.c.id)
            ).scalars()
        )
        stored = set(conn.execute(select(items.c.id)).scalars())
    # The second digest holds every item that arrived during the outage, and only those.
    assert gap and not first & gap and first | gap == stored

    async def a_month_later() -> list[tuple[int, PlanReport | None]]:
        """The hourly prune forgets each digest 30 days after it went; nothing goes again."""
        passes = []
        for days in (31, 34):
            clock.now = t0 + timedelta(days=days)
            pruned = await service.prune()
            passes.append((pruned.messages, (await service.run_pass()).planned))
        return passes

    assert asyncio.run(a_month_later()) == [(1, PlanReport()), (1, PlanReport())]
    assert _digest_keys(engine) == []
    assert len(server.handler.messages) == 2


def test_run_collects_sends_the_alert_serves_http_and_stops_cleanly(
    tmp_path: Path, engine: Engine, server: MailServer
) -> None:
    """The running service collects at start, mails the alert, answers /healthz, then stops."""
    service, _ = _alert_service(tmp_path, engine, server)

    async def scenario() -> int:
        running = asyncio.create_task(service.run(host="127.0.0.1", port=0))
        deadline = clock_time.monotonic() + WAIT_SECONDS
        while not server.handler.messages and clock_time.monotonic() < deadline:
            assert not running.done(), running
            await asyncio.sleep(0.05)
        assert service.server is not None and service.server.started
        assert service.scheduler is not None
        jobs = service.scheduler.get_jobs()
        leader = ["leader"] if engine.dialect.name == "postgresql" else []  # the lock check
        assert sorted(job.id for job in jobs) == [
            "collect:newsroom",
            *leader,
            "prune",
            "reload",
            "retry",
        ]
        assert all(
            (job.misfire_grace_time, job.coalesce, job.max_instances) == (3600, True, 1)
            for job in jobs
        )
        port = service.server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        service.request_stop()
        await asyncio.wait_for(running, WAIT_SECONDS)
        return health.status_code

    assert asyncio.run(scenario()) == 200
    received = server.handler.messages
    assert received, "no alert arrived within the bound"
    assert all(m.recipients == ("analyst@example.org",) for m in received)
    subjects = [
        email.message_from_bytes(m.content, policy=email.policy.default)["Subject"]
        for m in received
    ]
    assert any("Центральной Азии" in subject for subject in subjects), subjects
    assert service.server is not None and service.server.should_exit
    with engine.connect() as conn:
        statuses = set(conn.execute(select(outbox.c.status)).scalars())
    assert statuses == {"sent"}
    # The collection's items are in the static feeds, written before the stop finished.
    feed = feedparser.parse((tmp_path / "feeds" / "ru" / "all.atom").read_bytes())
    assert not feed.bozo and feed.entries


def _statuses(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(outbox.c.status)).scalars())


def test_stopping_waits_for_the_sends_under_way(
    tmp_path: Path, engine: Engine, server: MailServer
) -> None:
    """A stop asked while a pass is sending lets the pass finish and record what it sent."""
    gate, waiting = asyncio.Event(), asyncio.Event()

    def gated() -> AbstractAsyncContextManager[Transport]:
        return GatedTransport(SmtpTransport(server.settings()), gate, waiting)

    service, _ = _alert_service(tmp_path, engine, server, transport=gated)

    async def scenario() -> None:
        running = asyncio.create_task(service.run(host="127.0.0.1", port=0))
        await asyncio.wait_for(waiting.wait(), WAIT_SECONDS)  # a pass is sending
        service.request_stop()
        await asyncio.sleep(0.3)
        assert not running.done()  # still waiting for that pass
        gate.set()
        await asyncio.wait_for(running, WAIT_SECONDS)

    asyncio.run(scenario())
    assert server.handler.messages
    assert _statuses(engine) == {"sent"}


def test_stopping_gives_up_on_a_stuck_pass_after_the_bound(
    tmp_path: Path, engine: Engine, server: MailServer
) -> None:
    """A pass that does not finish within the stop bound is cancelled; its rows stay leased."""
    gate, waiting = asyncio.Event(), asyncio.Event()

    def stuck() -> AbstractAsyncContextManager[Transport]:
        return GatedTransport(SmtpTransport(server.settings()), gate, waiting)

    service, _ = _alert_service(
        tmp_path, engine, server, transport=stuck, stop_timeout=timedelta(seconds=0.5)
    )

    async def scenario() -> float:
        running = asyncio.create_task(service.run(host="127.0.0.1", port=0))
        await asyncio.wait_for(waiting.wait(), WAIT_SECONDS)
        began = clock_time.monotonic()
        service.request_stop()
        await asyncio.wait_for(running, WAIT_SECONDS)
        return clock_time.monotonic() - began

    assert asyncio.run(scenario()) < 3
    assert server.handler.messages == []
    # Another worker re-claims them once the lease has passed: nothing is lost.
    assert _statuses(engine) == {"sending"}


def test_run_reports_a_port_in_use_and_runs_no_job(
    tmp_path: Path, engine: Engine, server: MailServer
) -> None:
    """When the port is taken, run raises ListenError naming the address; nothing is sent."""
    service, _ = _alert_service(tmp_path, engine, server)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            asyncio.run(service.run(host="127.0.0.1", port=port))
    assert server.handler.messages == []
    assert _statuses(engine) == set()


def test_the_running_scheduler_fires_the_digest_job_and_the_digest_goes_out(
    tmp_path: Path, engine: Engine, server: MailServer
) -> None:
    """The scheduler's own digest job (fired now instead of at 09:00) mails the digest once."""
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    settings = _settings(engine, server, content)
    subscriptions = _subscriptions(DAILY)
    t0 = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)  # 08:00 in Tashkent
    clock = Clock(t0)
    plan(
        engine,
        subscriptions,
        renderer=_renderer(settings)(subscriptions),
        settings=settings,
        now=t0 - timedelta(minutes=1),
    )  # subscribed before the items arrive
    service = _service(settings, engine, subscriptions, clock)
    job_id = "digest:daily:Asia/Tashkent:09:00"

    async def wait_for(condition: Callable[[], bool], running: asyncio.Task[None]) -> None:
        deadline = clock_time.monotonic() + WAIT_SECONDS
        while not condition():
            assert not running.done(), running
            assert clock_time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        running = asyncio.create_task(service.run(host="127.0.0.1", port=0))
        await wait_for(lambda: _stored(engine) > 0 and service.idle, running)
        assert server.handler.messages == []  # 08:00: nothing due yet
        assert service.scheduler is not None
        job = service.scheduler.get_job(job_id)
        assert job is not None
        local = job.next_run_time.astimezone(ZoneInfo("Asia/Tashkent"))
        assert (local.hour, local.minute) == (9, 0)
        clock.now = t0 + timedelta(hours=1)  # 09:00 in Tashkent: the job fires
        job.modify(next_run_time=datetime.now(UTC))
        await wait_for(lambda: len(server.handler.messages) == 1, running)
        job.modify(next_run_time=datetime.now(UTC))  # a second firing in the same period
        await asyncio.sleep(0.5)
        service.request_stop()
        await asyncio.wait_for(running, WAIT_SECONDS)

    asyncio.run(scenario())
    assert [m.recipients for m in server.handler.messages] == [("desk@example.org",)]
    assert _digest_keys(engine) == ["daily:2025-03-03"]


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(items.c.id)).all())
