from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from publisher.delivery import SmtpTransport
from publisher.delivery.message import MessageTemplate, make_message_id
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.rendering.emails import UNSUBSCRIBE_URL_MARK, RenderedEmail
from publisher.settings import Settings
from publisher.store.outbox import NewMessage, RetryPolicy, Status, enqueue, outbox, status_counts
from publisher.store.suppressions import Reason, is_suppressed, suppress
from tests.delivery.conftest import MailServer

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


def _template() -> bytes:
    rendered = RenderedEmail(
        subject="2 новые публикации",
        html=f"<p>Привет</p><a href='{UNSUBSCRIBE_URL_MARK}'>x</a>",
        text=f"Привет\nОтписаться: {UNSUBSCRIBE_URL_MARK}\n",
        locale="ru",
    )
    template = MessageTemplate.build(
        rendered,
        sender=SETTINGS.sender.from_,
        reply_to=None,
        list_id="news",
        list_name="OSCE News",
        domain="example.org",
        date=T0,
    )
    return template.to_bytes()


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
