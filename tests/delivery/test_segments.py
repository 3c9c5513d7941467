"""Segments: what many bodies show alike, stored once, read back by the worker."""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage

from sqlalchemy import Engine, func, select

from publisher.delivery import SmtpTransport
from publisher.delivery._templates import Templates
from publisher.delivery.message import MessageTemplate, make_message_id
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.rendering.emails import UNSUBSCRIBE_URL_MARK, RenderedEmail, Shared
from publisher.store.outbox import NewMessage, enqueue, load_segments, save_segments
from publisher.store.schema import segments
from tests.delivery.conftest import MailServer
from tests.delivery.test_worker import SETTINGS, T0, Clock, build_template

BLOCK = "<p>Тридцать следователей и прокуроров из Центральной Азии.</p>\n" * 10
TEXT_BLOCK = "Тридцать следователей и прокуроров из Центральной Азии.\n" * 10


def _template(block: Shared, text_block: Shared, words: str) -> MessageTemplate:
    """A digest as the renderer assembles it: its frame, a shared block in each part."""
    # Plain and shared texts in turn, as the renderer gives them.
    # "%" in the body's own text: stored escaped, as the format it is kept in wants.
    html = (
        f'<html><body style="width: 100%"><h1>{words}</h1>',
        block,
        f'<a href="{UNSUBSCRIBE_URL_MARK}">x %b %%</a>',
    )
    text = (f"{words} 100%\n\n", text_block, f"\n%s Отписаться: {UNSUBSCRIBE_URL_MARK}\n")

    def joined(pieces: tuple[str, ...]) -> str:
        return "".join(pieces)

    rendered = RenderedEmail(
        subject=words,
        html=joined(html),
        text=joined(text),
        locale="ru",
        html_pieces=html,
        text_pieces=text,
    )
    return build_template(rendered)


def _store(engine: Engine, template: MessageTemplate, recipients: list[str], key: str) -> None:
    with engine.begin() as conn:
        save_segments(conn, {s.digest: s.data for s in template.segments}, now=T0)
        enqueue(
            conn,
            template.to_bytes(),
            [
                NewMessage(r, key, ("item-1",), make_message_id(key=f"{key}/{r}", domain="x.org"))
                for r in recipients
            ],
            now=T0,
        )


def test_segments_are_stored_once_and_read_back(engine: Engine) -> None:
    """Saving a segment twice keeps one row; loading gives the bytes of those stored."""
    with engine.begin() as conn:
        save_segments(conn, {b"a" * 16: b"first"}, now=T0)
        save_segments(conn, {b"a" * 16: b"first", b"b" * 16: b"second"}, now=T0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(segments)).scalar() == 2
        assert load_segments(conn, [b"b" * 16, b"c" * 16, b"a" * 16]) == {
            b"a" * 16: b"first",
            b"b" * 16: b"second",
        }


def test_two_bodies_share_their_blocks_in_the_store(engine: Engine) -> None:
    """Two digests showing the same blocks under different words store them once."""
    block, text_block = Shared(BLOCK), Shared(TEXT_BLOCK)
    one = _template(block, text_block, "Первый")
    two = _template(block, text_block, "Второй")
    _store(engine, one, ["a@example.net"], "daily:1")
    _store(engine, two, ["b@example.net"], "daily:2")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(segments)).scalar() == 2
    assert len(one.to_bytes()) < len(BLOCK.encode())  # the body names the block only


def test_templates_read_each_segment_once_and_again_after_letting_go(engine: Engine) -> None:
    """The worker's cache reads a batch's segments from the store, gives templates that
    personalize as the ones built, and reads segments again once it has let them go."""
    block, text_block = Shared(BLOCK), Shared(TEXT_BLOCK)
    built = [_template(block, text_block, words) for words in ("Первый", "Второй")]
    with engine.begin() as conn:
        save_segments(conn, {s.digest: s.data for s in built[0].segments}, now=T0)
    bodies = [t.to_bytes() for t in built]
    templates = Templates(engine, dkim=None, templates=1, segment_bytes=1)
    templates.prepare(bodies)
    for body, template in zip(bodies, built, strict=True):
        # The first body's template was let go (one kept), and so were the segments.
        assert templates.get(body) == template
    templates.prepare([b"not a stored template", *bodies])  # left for get() to fail on


def test_a_worker_sends_bodies_whose_blocks_are_in_the_store(
    engine: Engine, server: MailServer
) -> None:
    """Digests stored as frames naming their blocks arrive whole: each part decodes to
    the frame with the block in its place."""
    block, text_block = Shared(BLOCK), Shared(TEXT_BLOCK)
    _store(engine, _template(block, text_block, "Первый"), ["a@example.net"], "daily:1")
    _store(engine, _template(block, text_block, "Второй"), ["b@example.net"], "daily:2")

    async def go() -> DeliveryReport:
        async with SmtpTransport(server.settings(connections=2)) as transport:
            worker = Worker(engine, transport, settings=SETTINGS, clock=Clock(), batch=1)
            return await worker.run_once()

    assert asyncio.run(go()) == DeliveryReport(sent=2)
    for received in server.handler.messages:
        message = email.message_from_bytes(received.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        text, html = (p.get_content().replace("\r\n", "\n") for p in message.iter_parts())
        assert TEXT_BLOCK in text and BLOCK in html
        assert message["Subject"] in text and message["Subject"] in html
        assert 'style="width: 100%"' in html and "x %b %%</a>" in html
        assert " 100%\n" in text and "\n%s Отписаться" in text
