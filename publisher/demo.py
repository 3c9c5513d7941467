"""``publisher demo``: the whole pipeline on the bundled sample, over real SMTP.

A local aiosmtpd server captures every message into a Maildir under ``var/demo/``; the
sample content is collected into a fresh demo store; the sample subscribers are
registered a week back, so that every daily and weekly send time has come since, and
everything due is queued and delivered through the real outbox and SMTP sender.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import mailbox
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller

from publisher.collect import SourceReport, collect
from publisher.delivery import SmtpTransport
from publisher.delivery.planning import PlanReport, plan
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.feeds import FeedBuilder
from publisher.feeds.static import BuildReport, build_static
from publisher.rendering.emails import EmailRenderer
from publisher.resources import sample
from publisher.settings import Settings
from publisher.store import open_store
from publisher.subscriptions import load_subscriptions
from publisher.taxonomy import load_taxonomy

DEMO_SECRET = "demo-only-secret"  # noqa: S105 - the demo's store and links are throw-away
HOST = "127.0.0.1"
# The subscribers "subscribed" this long before the sample was collected and sent.
HEAD_START = timedelta(days=8)


@dataclass(frozen=True, slots=True)
class Received:
    recipient: str
    subject: str
    language: str


@dataclass(frozen=True, slots=True)
class DemoResult:
    maildir: Path
    database_url: str
    collected: list[SourceReport]
    planned: PlanReport
    delivered: DeliveryReport
    received: list[Received]
    settings: Settings
    feeds: BuildReport


class _Capture:
    """aiosmtpd handler: every message into one Maildir, as the MTA would have it."""

    def __init__(self, maildir: Path) -> None:
        self.box = mailbox.Maildir(maildir, create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = mailbox.MaildirMessage(envelope.original_content)
        self.box.add(message)
        return "250 2.0.0 Ok: captured"


class _Controller(Controller):
    """Listens on a free port (aiosmtpd 1.4 cannot report the port it gets for 0)."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)  # listening once start() saw it ready
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def run_demo(workdir: Path, *, port: int = 0, web_port: int = 8000) -> DemoResult:
    """Run the pipeline once in ``workdir/var/demo`` (wiped first) and report.

    ``port`` is the capture server's (0: any free one); the unsubscribe links in the
    messages point at the web app on ``web_port``, where ``demo --serve`` puts it.
    """
    root = workdir / "var" / "demo"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    maildir = root / "Maildir"
    controller = _Controller(_Capture(maildir), hostname=HOST, port=port)
    controller.start()
    try:
        settings = _settings(root, controller.port, web_port)
        return asyncio.run(_pipeline(settings, maildir))
    finally:
        controller.stop()


def _settings(root: Path, smtp_port: int, web_port: int) -> Settings:
    return Settings.model_validate(
        {
            "base_url": f"http://127.0.0.1:{web_port}",
            "database_url": f"sqlite:///{root / 'publisher.db'}",
            "subscriptions": sample("subscriptions.yaml"),
            "secret_key": DEMO_SECRET,
            "sender": {"from": "OSCE News (demo) <news@example.org>"},
            "smtp": {"host": HOST, "port": smtp_port, "tls": "none"},
            "sources": [{"name": "newsroom", "kind": "folder", "path": sample("content")}],
            "feeds": {"out_dir": root / "feeds"},
        }
    )


async def _pipeline(settings: Settings, maildir: Path) -> DemoResult:
    taxonomy = load_taxonomy()
    subscriptions = load_subscriptions(
        settings.subscriptions, taxonomy=taxonomy, locales=settings.locales
    )
    engine = open_store(settings.database_url)
    renderer = EmailRenderer(
        taxonomy=subscriptions.taxonomy, base_url=settings.base_url, organisation="OSCE News"
    )
    now = datetime.now(UTC)
    then = now - HEAD_START
    try:
        # Subscribers first, then the collection: the sample is news to them, not a back
        # catalogue. A week later every digest has come due.
        await asyncio.to_thread(
            plan, engine, subscriptions, renderer=renderer, settings=settings, now=then
        )
        collected = await collect(settings, engine, taxonomy=taxonomy, clock=lambda: then)
        planned = await asyncio.to_thread(
            plan, engine, subscriptions, renderer=renderer, settings=settings, now=now
        )
        async with SmtpTransport(settings.smtp) as transport:
            delivered = await Worker(engine, transport, settings=settings).run_once()
        feeds = await asyncio.to_thread(
            build_static,
            FeedBuilder(settings, taxonomy=taxonomy),
            engine,
            settings.feeds.out_dir,
        )
    finally:
        engine.dispose()
    return DemoResult(
        maildir=maildir,
        database_url=settings.database_url,
        collected=collected,
        planned=planned,
        delivered=delivered,
        received=_read(maildir),
        settings=settings,
        feeds=feeds,
    )


def _read(maildir: Path) -> list[Received]:
    received = []
    box = mailbox.Maildir(maildir, create=False)
    for key in box.iterkeys():
        message = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        received.append(
            Received(
                recipient=str(message["To"]),
                subject=str(message["Subject"]),
                language=str(message.get("Content-Language", "")),
            )
        )
    return sorted(received, key=lambda r: (r.recipient, r.subject))
