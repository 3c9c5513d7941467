from __future__ import annotations

import asyncio
import email
import email.policy
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from publisher.delivery import SmtpTransport
from publisher.delivery.message import MessageTemplate, make_message_id
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.rendering.emails import UNSUBSCRIBE_URL_MARK, RenderedEmail
from publisher.settings import Settings
from publisher.store.outbox import NewMessage, RetryPolicy, Status, enqueue, outbox, status_counts
from publisher.store.suppressions import Reason, is_suppressed, suppress
from tests.delivery.conftest import Handler, MailServer

T0 = datetime(2024, 12, 6, 8, 0, tzinfo=UTC)
SETTINGS = Settings(
    base_url="https://news.example.org",
    secret_key="test-secret",
    sender={"from": "OSCE News <news@example.org>"},
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def build_template(rendered: RenderedEmail) -> MessageTemplate:
    """The template of ``rendered`` as planning builds it with SETTINGS."""
    return MessageTemplate.build(
        rendered,
        sender=SETTINGS.sender.from_,
        reply_to=None,
        list_id="news",
        list_name="OSCE News",
        domain="example.org",
        date=T0,
    )


def _template() -> bytes:
    rendered = RenderedEmail(
        subject="2 новые публикации",
        html=f"<p>Привет</p><a href='{UNSUBSCRIBE_URL_MARK}'>x</a>",
        text=f"Привет\nОтписаться: {UNSUBSCRIBE_URL_MARK}\n",
        locale="ru",
    )
    return build_template(rendered).to_bytes()


def _enqueue(engine: Engine, recipients: list[str], key: str = "daily:2024-12-06") -> None:
    with engine.begin() as conn:
        enqueue(
            conn,
            _template(),
            [
                NewMessage(
                    r, key, ("item-1",), make_message_id(key=f"{key}/{r}", domain="example.org")
                )
                for r in recipients
            ],
            now=T0,
        )


def _run(engine: Engine, server: MailServer, clock: Clock, **kwargs: object) -> DeliveryReport:
    async def go() -> DeliveryReport:
        async with SmtpTransport(server.settings(connections=3)) as transport:
            worker = Worker(engine, transport, settings=SETTINGS, clock=clock, batch=7, **kwargs)  # type: ignore[arg-type]
            return await worker.run_once()

    return asyncio.run(go())


def test_every_due_message_is_sent_once(engine: Engine, server: MailServer) -> None:
    """30 queued messages reach the server exactly once each; a second pass sends nothing."""
    recipients = [f"r{i}@example.net" for i in range(30)]
    _enqueue(engine, recipients)
    clock = Clock()
    assert _run(engine, server, clock) == DeliveryReport(sent=30)
    assert _run(engine, server, clock) == DeliveryReport()
    got = sorted(r for m in server.handler.messages for r in m.recipients)
    assert got == sorted(recipients)
    first = email.message_from_bytes(
        server.handler.messages[0].content, policy=email.policy.default
    )
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://news.example.org/u/" in first["List-Unsubscribe"]
    with engine.connect() as conn:
        assert status_counts(conn)[Status.SENT] == 30


def test_suppressed_addresses_are_never_mailed(engine: Engine, server: MailServer) -> None:
    """An address that unsubscribed after queuing is skipped, not sent."""
    _enqueue(engine, ["gone@example.net", "stays@example.net"])
    with engine.begin() as conn:
        suppress(conn, "Gone@example.net", reason=Reason.UNSUBSCRIBED, now=T0, source="web")
    assert _run(engine, server, Clock()) == DeliveryReport(sent=1, skipped=1)
    assert [m.recipients for m in server.handler.messages] == [("stays@example.net",)]


def test_a_4xx_is_retried_later_and_then_delivered(engine: Engine, server: MailServer) -> None:
    """451 at RCPT: queued again with a backoff, delivered once when its time comes."""
    _enqueue(engine, ["slow@example.net"])
    server.handler.fail("RCPT", "451 4.7.1 Greylisted")
    clock = Clock()
    assert _run(engine, server, clock) == DeliveryReport(retried=1)
    assert _run(engine, server, clock) == DeliveryReport()  # not due yet
    with engine.connect() as conn:
        next_at = conn.execute(select(outbox.c.next_attempt_at)).scalar_one()
    clock.now = next_at
    assert _run(engine, server, clock) == DeliveryReport(sent=1)
    assert len(server.handler.messages) == 1


def test_permanent_failures_suppress_the_address(engine: Engine, server: MailServer) -> None:
    """Two 550s for one address fail both messages and suppress the address."""
    _enqueue(engine, ["nobody@example.net"], key="alert:a")
    _enqueue(engine, ["nobody@example.net"], key="alert:b")
    server.handler.refuse["nobody@example.net"] = "550 5.1.1 No such user"
    assert _run(engine, server, Clock()) == DeliveryReport(failed=2)
    with engine.connect() as conn:
        assert is_suppressed(conn, "nobody@example.net")
        assert status_counts(conn)[Status.FAILED] == 2


def test_a_5xx_before_rcpt_is_not_the_recipient_s_fault(engine: Engine, server: MailServer) -> None:
    """A 554 at MAIL FROM is retried and never suppresses the recipient."""
    _enqueue(engine, ["fine@example.net"])
    server.handler.fail("MAIL", "554 5.7.1 Sender blocked")
    policy = RetryPolicy(base=timedelta(seconds=1), max_attempts=5)
    assert _run(engine, server, Clock(), policy=policy) == DeliveryReport(retried=1)
    with engine.connect() as conn:
        assert not is_suppressed(conn, "fine@example.net")
        assert status_counts(conn)[Status.QUEUED] == 1


class _SuppressDuringSend(Handler):
    """Suppresses an address (as an unsubscribe click would) while the first message is
    in DATA, that is while its batch is being sent."""

    def __init__(self, engine: Engine, address: str) -> None:
        super().__init__()
        self.engine = engine
        self.address = address

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.messages:
            with self.engine.begin() as conn:
                suppress(conn, self.address, reason=Reason.UNSUBSCRIBED, now=T0, source="web")
        return await super().handle_DATA(server, session, envelope)


def _run_one_connection(
    engine: Engine, server: MailServer, *, batch: int, recheck: timedelta
) -> DeliveryReport:
    async def go() -> DeliveryReport:
        async with SmtpTransport(server.settings(connections=1)) as transport:
            worker = Worker(
                engine, transport, settings=SETTINGS, clock=Clock(), batch=batch, recheck=recheck
            )
            return await worker.run_once()

    return asyncio.run(go())


def test_a_suppression_during_a_batch_is_honoured_by_the_rest_of_it(
    engine: Engine, start_server: Callable[..., MailServer]
) -> None:
    """An address suppressed while its batch is under way is not mailed by a later message
    of that batch once the suppression list is read again (here: before every message)."""
    recipients = [f"r{i}@example.net" for i in range(8)]
    _enqueue(engine, recipients)
    server = start_server(handler=_SuppressDuringSend(engine, "R5@example.net"))
    report = _run_one_connection(engine, server, batch=8, recheck=timedelta(0))
    assert report == DeliveryReport(sent=7, skipped=1)
    assert "r5@example.net" not in {r for m in server.handler.messages for r in m.recipients}
    with engine.connect() as conn:
        status = conn.execute(
            select(outbox.c.status).where(outbox.c.recipient == "r5@example.net")
        ).scalar_one()
    assert status == Status.SKIPPED


def test_a_suppression_during_a_batch_is_honoured_by_the_next_batch(
    engine: Engine, start_server: Callable[..., MailServer]
) -> None:
    """However long the list is trusted within a batch, each batch reads it after its claim:
    a suppression made while one batch is sent holds for every batch claimed later."""
    recipients = [f"r{i}@example.net" for i in range(8)]
    _enqueue(engine, recipients)
    server = start_server(handler=_SuppressDuringSend(engine, "r7@example.net"))
    # Batches of 2: the next is claimed (and checked) once the first is handed out.
    report = _run_one_connection(engine, server, batch=2, recheck=timedelta(hours=1))
    assert report == DeliveryReport(sent=7, skipped=1)
    assert "r7@example.net" not in {r for m in server.handler.messages for r in m.recipients}


class _LockDuringSend(Handler):
    """Another writer (a planning pass) takes SQLite's write lock for a while during the
    first message's DATA, so that the worker's record of that message has to wait."""

    def __init__(self, path: str, seconds: float) -> None:
        super().__init__()
        self.path = path
        self.seconds = seconds
        self.holder: threading.Thread | None = None

    def _hold(self, locked: threading.Event) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(self.seconds)
        conn.execute("COMMIT")
        conn.close()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.holder is None:
            locked = threading.Event()
            self.holder = threading.Thread(target=self._hold, args=(locked,))
            self.holder.start()
            locked.wait()
        return await super().handle_DATA(server, session, envelope)


def test_a_record_that_waits_for_sqlite_s_lock_does_not_stall_the_loop(
    engine: Engine, start_server: Callable[..., MailServer]
) -> None:
    """While another writer holds the SQLite database, the answers wait for it off the event
    loop (which keeps running) and are all recorded once it is free."""
    if engine.dialect.name != "sqlite" or engine.url.database is None:
        pytest.skip("SQLite's write lock")
    recipients = [f"r{i}@example.net" for i in range(6)]
    _enqueue(engine, recipients)
    server = start_server(handler=_LockDuringSend(engine.url.database, seconds=0.6))
    gaps: list[float] = []

    async def go() -> DeliveryReport:
        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        ticker = asyncio.create_task(tick())
        async with SmtpTransport(server.settings(connections=2)) as transport:
            worker = Worker(engine, transport, settings=SETTINGS, clock=Clock(), batch=6)
            report = await worker.run_once()
        ticker.cancel()
        return report

    assert asyncio.run(go()) == DeliveryReport(sent=6)
    assert max(gaps) < 0.3, f"the event loop stood still for {max(gaps):.2f} s"
    with engine.connect() as conn:
        assert status_counts(conn)[Status.SENT] == 6
