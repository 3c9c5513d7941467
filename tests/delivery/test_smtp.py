"""SmtpTransport against a real aiosmtpd server: delivery, TLS, AUTH, faults, pacing."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtplib.protocol import normalize_message_line_endings

from publisher.delivery import (
    DeliveryError,
    Outcome,
    SendResult,
    SmtpTransport,
    Stage,
    TransportStats,
)
from publisher.delivery._transaction import CanonicalMessage
from publisher.settings import SmtpSettings, TlsMode
from tests.delivery.conftest import (
    DROP,
    HOST,
    PASSWORD,
    STALL,
    USERNAME,
    Certificates,
    MailServer,
)

SENDER = "bounces@example.org"
READER = "reader@example.org"


def build(n: int, body: str = "Hello.") -> bytes:
    return (
        "From: News <news@example.org>\r\n"
        f"To: {READER}\r\n"
        f"Subject: Item {n}\r\n"
        f"Message-ID: <item-{n}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


async def send_all(
    settings: SmtpSettings,
    messages: Sequence[bytes],
    *,
    recipients: Sequence[str] = (READER,),
    password: str | None = None,
) -> tuple[list[SendResult], TransportStats]:
    """Send every message at once from as many tasks, then close the transport."""
    async with SmtpTransport(settings, password=password) as transport:
        results = await asyncio.gather(
            *(
                transport.send(sender=SENDER, recipients=recipients, message=message)
                for message in messages
            )
        )
    return list(results), transport.stats


async def send_each(
    settings: SmtpSettings, messages: Sequence[bytes], **kwargs: Any
) -> tuple[list[SendResult], TransportStats]:
    """Send the messages one after another over one transport."""
    async with SmtpTransport(settings, password=kwargs.pop("password", None)) as transport:
        results = [
            await transport.send(sender=SENDER, recipients=[READER], message=message)
            for message in messages
        ]
    return results, transport.stats


def test_delivers_many_messages_over_few_reused_connections(server: MailServer) -> None:
    """50 concurrent sends over 2 connections: all delivered, byte for byte, on 2 sessions."""
    messages = [build(n) for n in range(50)]
    results, stats = asyncio.run(send_all(server.settings(connections=2), messages))
    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    assert {(r.code, r.stage) for r in results} == {(250, Stage.DATA)}
    assert sorted(m.content for m in server.handler.messages) == sorted(messages)
    assert server.handler.sessions <= 2
    assert stats == TransportStats(sent=50, connections=server.handler.sessions)


def test_starttls_is_required_and_verified_against_the_ca_file(
    start_server: Callable[..., MailServer], certificates: Certificates
) -> None:
    """tls = starttls upgrades before MAIL and trusts the private CA of smtp.ca_file."""
    server = start_server(tls="starttls")
    settings = server.settings(tls=TlsMode.STARTTLS, ca_file=certificates.ca_file)
    results, _ = asyncio.run(send_each(settings, [build(1), build(2)]))
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 2
    assert [m.tls for m in server.handler.messages] == [True, True]
    assert server.handler.sessions == 1


def test_implicit_tls_is_verified_against_the_ca_file(
    start_server: Callable[..., MailServer], certificates: Certificates
) -> None:
    """tls = tls speaks TLS from the first byte (port 465 style) and delivers."""
    server = start_server(tls="tls")
    settings = server.settings(tls=TlsMode.TLS, ca_file=certificates.ca_file)
    results, _ = asyncio.run(send_each(settings, [build(1)]))
    assert results[0].outcome is Outcome.DELIVERED
    assert server.handler.messages[0].tls


@pytest.mark.parametrize("mode", [TlsMode.STARTTLS, TlsMode.TLS])
def test_untrusted_certificate_fails_without_falling_back_to_plain_text(
    start_server: Callable[..., MailServer], certificates: Certificates, mode: TlsMode
) -> None:
    """A certificate from an untrusted CA: TEMPORARY, a clear detail, no MAIL in plain text."""
    # The STARTTLS server would take the message in plain text: nothing may reach it.
    server = start_server(tls=mode.value, require_tls=False)
    settings = server.settings(tls=mode, ca_file=certificates.other_ca_file)
    results, stats = asyncio.run(send_each(settings, [build(1), build(2)]))
    for result in results:
        assert (result.outcome, result.code, result.stage) == (
            Outcome.TEMPORARY,
            None,
            Stage.CONNECT,
        )
        assert result.detail.startswith(f"certificate verify failed for host {HOST}")
    assert server.handler.mail_commands == 0
    assert server.handler.messages == []
    assert stats.connections == 0


def test_verify_certificates_false_is_an_explicit_opt_out(
    start_server: Callable[..., MailServer],
) -> None:
    """verify_certificates = false accepts a certificate no trusted CA signed."""
    server = start_server(tls="starttls")
    settings = server.settings(tls=TlsMode.STARTTLS, verify_certificates=False)
    results, _ = asyncio.run(send_each(settings, [build(1)]))
    assert results[0].outcome is Outcome.DELIVERED
    assert server.handler.messages[0].tls


def test_starttls_required_but_not_offered_sends_nothing(server: MailServer) -> None:
    """tls = starttls against a server without STARTTLS: TEMPORARY, never plain text."""
    results, _ = asyncio.run(send_each(server.settings(tls=TlsMode.STARTTLS), [build(1)]))
    assert (results[0].outcome, results[0].stage) == (Outcome.TEMPORARY, Stage.CONNECT)
    assert "STARTTLS" in results[0].detail
    assert server.handler.mail_commands == 0


def test_auth_with_the_right_password(start_server: Callable[..., MailServer]) -> None:
    """With smtp.username set, the transport logs in (AUTH PLAIN/LOGIN) once per connection."""
    server = start_server(auth=True)
    settings = server.settings(username=USERNAME)
    results, _ = asyncio.run(send_each(settings, [build(1), build(2)], password=PASSWORD))
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 2
    assert [m.user for m in server.handler.messages] == [USERNAME, USERNAME]


def test_auth_after_starttls(
    start_server: Callable[..., MailServer], certificates: Certificates
) -> None:
    """AUTH works over STARTTLS, where the server offers it only once TLS is on."""
    server = start_server(tls="starttls", auth=True)
    settings = server.settings(
        tls=TlsMode.STARTTLS, ca_file=certificates.ca_file, username=USERNAME
    )
    results, _ = asyncio.run(send_each(settings, [build(1)], password=PASSWORD))
    assert results[0].outcome is Outcome.DELIVERED
    assert (server.handler.messages[0].tls, server.handler.messages[0].user) == (True, USERNAME)


def test_auth_with_a_wrong_password_is_permanent(
    start_server: Callable[..., MailServer],
) -> None:
    """A wrong password: 535 → PERMANENT at the AUTH stage, and nothing sent."""
    server = start_server(auth=True)
    settings = server.settings(username=USERNAME)
    results, _ = asyncio.run(send_each(settings, [build(1)], password="wrong"))
    assert (results[0].outcome, results[0].code, results[0].stage) == (
        Outcome.PERMANENT,
        535,
        Stage.AUTH,
    )
    assert server.handler.mail_commands == 0


@pytest.mark.parametrize("command", ["RCPT", "DATA"])
@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("450 4.2.1 Mailbox busy", Outcome.TEMPORARY),
        ("451 4.3.0 Local error", Outcome.TEMPORARY),
        ("452 4.3.1 Insufficient storage", Outcome.TEMPORARY),
        ("550 5.1.1 No such user", Outcome.PERMANENT),
        ("553 5.1.3 Mailbox name not allowed", Outcome.PERMANENT),
        ("554 5.7.1 Rejected", Outcome.PERMANENT),
    ],
)
def test_reply_codes_are_classified_per_rfc_5321(
    server: MailServer, command: str, reply: str, outcome: Outcome
) -> None:
    """4yz at RCPT or DATA is TEMPORARY, 5yz PERMANENT; the connection is reused after."""
    server.handler.fail(command, reply)
    results, stats = asyncio.run(send_each(server.settings(), [build(1), build(2)]))
    code = int(reply[:3])
    assert (results[0].outcome, results[0].code, results[0].stage) == (
        outcome,
        code,
        Stage.RCPT if command == "RCPT" else Stage.DATA,
    )
    assert results[0].detail == reply[4:]
    assert results[1].outcome is Outcome.DELIVERED
    assert [m.content for m in server.handler.messages] == [build(2)]
    assert (stats.connections, server.handler.sessions) == (1, 1)


@pytest.mark.parametrize("command", ["MAIL", "RCPT", "DATA"])
def test_421_is_temporary_and_the_next_send_reconnects(server: MailServer, command: str) -> None:
    """421 (the server closes the channel): TEMPORARY, and the next send opens a new connection."""
    server.handler.fail(command, "421 4.3.2 Shutting down")
    results, stats = asyncio.run(send_each(server.settings(connections=1), [build(1), build(2)]))
    assert (results[0].outcome, results[0].code) == (Outcome.TEMPORARY, 421)
    assert results[1].outcome is Outcome.DELIVERED
    assert [m.content for m in server.handler.messages] == [build(2)]
    assert (stats.connections, stats.reconnects, server.handler.sessions) == (2, 1, 2)


def test_a_sender_refusal_is_about_the_session(server: MailServer) -> None:
    """A 5yz to MAIL FROM is PERMANENT at the MAIL stage (not the recipient's fault)."""
    server.handler.fail("MAIL", "553 5.7.1 Sender not allowed")
    results, _ = asyncio.run(send_each(server.settings(), [build(1)]))
    assert (results[0].outcome, results[0].code, results[0].stage) == (
        Outcome.PERMANENT,
        553,
        Stage.MAIL,
    )


def test_partial_refusal_is_delivered_with_the_refusals(server: MailServer) -> None:
    """Some recipients refused: DELIVERED to the others, each refusal with its own code."""
    server.handler.refuse = {
        "gone@example.org": "550 5.1.1 No such user",
        "full@example.org": "452 4.2.2 Mailbox full",
    }
    recipients = ["gone@example.org", READER, "full@example.org"]
    results, _ = asyncio.run(send_all(server.settings(), [build(1)], recipients=recipients))
    result = results[0]
    assert (result.outcome, result.code) == (Outcome.DELIVERED, 250)
    assert [(r.recipient, r.code, r.outcome) for r in result.refused] == [
        ("gone@example.org", 550, Outcome.PERMANENT),
        ("full@example.org", 452, Outcome.TEMPORARY),
    ]
    assert server.handler.messages[0].recipients == (READER,)


def test_every_recipient_refused_is_temporary_when_any_refusal_is(server: MailServer) -> None:
    """All refused: TEMPORARY if one refusal is 4yz (it may succeed later), else PERMANENT."""
    server.handler.refuse = {
        "gone@example.org": "550 5.1.1 No such user",
        "full@example.org": "452 4.2.2 Mailbox full",
    }
    mixed, _ = asyncio.run(
        send_all(server.settings(), [build(1)], recipients=["gone@example.org", "full@example.org"])
    )
    gone, _ = asyncio.run(send_all(server.settings(), [build(2)], recipients=["gone@example.org"]))
    assert (mixed[0].outcome, mixed[0].code, mixed[0].stage) == (
        Outcome.TEMPORARY,
        452,
        Stage.RCPT,
    )
    assert len(mixed[0].refused) == 2
    assert (gone[0].outcome, gone[0].code, gone[0].detail) == (
        Outcome.PERMANENT,
        550,
        "5.1.1 No such user",
    )
    assert server.handler.messages == []


def test_connection_dropped_during_data_is_temporary(server: MailServer) -> None:
    """The connection lost before the reply to the message's end: TEMPORARY, then reconnect."""
    server.handler.fail("DATA", DROP)
    results, stats = asyncio.run(send_each(server.settings(connections=1), [build(1), build(2)]))
    assert (results[0].outcome, results[0].code, results[0].stage) == (
        Outcome.TEMPORARY,
        None,
        Stage.TRANSACTION,
    )
    assert results[1].outcome is Outcome.DELIVERED
    assert [m.content for m in server.handler.messages] == [build(2)]
    assert stats.reconnects == 1


def test_a_stalled_server_times_out(server: MailServer) -> None:
    """No reply within smtp.timeout: TEMPORARY within the deadline, and the next send reconnects."""
    server.handler.fail("DATA", STALL)
    settings = server.settings(connections=1, timeout=timedelta(milliseconds=500))
    started = time.monotonic()
    results, stats = asyncio.run(send_each(settings, [build(1), build(2)]))
    assert time.monotonic() - started < 2
    assert (results[0].outcome, results[0].code) == (Outcome.TEMPORARY, None)
    assert "timed out" in results[0].detail.lower()
    assert results[1].outcome is Outcome.DELIVERED
    assert stats.reconnects == 1


def test_a_server_that_never_greets_times_out() -> None:
    """A peer that accepts TCP but never sends its 220 greeting: TEMPORARY at CONNECT."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen()
        settings = SmtpSettings(
            host=HOST, port=listener.getsockname()[1], timeout=timedelta(milliseconds=300)
        )
        started = time.monotonic()
        results, _ = asyncio.run(send_each(settings, [build(1)]))
    assert time.monotonic() - started < 2
    assert (results[0].outcome, results[0].stage) == (Outcome.TEMPORARY, Stage.CONNECT)


def test_connection_refused_is_temporary() -> None:
    """Nobody listening: TEMPORARY at CONNECT, with the reason."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    results, stats = asyncio.run(send_each(SmtpSettings(host=HOST, port=port), [build(1)]))
    assert (results[0].outcome, results[0].code, results[0].stage) == (
        Outcome.TEMPORARY,
        None,
        Stage.CONNECT,
    )
    assert f"port {port}" in results[0].detail
    assert stats == TransportStats(temporary=1)


def test_rate_limit_is_shared_by_the_pool(server: MailServer) -> None:
    """20 messages at 40/s over 4 connections take at least 19/40 s, evenly spaced."""
    settings = server.settings(connections=4, rate_per_second=40)
    started = time.monotonic()
    results, _ = asyncio.run(send_all(settings, [build(n) for n in range(20)]))
    elapsed = time.monotonic() - started
    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    assert 0.45 <= elapsed < 3


def test_pause_after_consecutive_errors_then_resume(
    server: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    """error_threshold temporary errors in a row pause sending for `pause`; then it resumes."""
    server.handler.fail("DATA", *["451 4.3.0 Try later"] * 3)
    settings = server.settings(connections=1, error_threshold=3, pause=timedelta(milliseconds=600))

    async def scenario() -> tuple[list[SendResult], float, TransportStats]:
        async with SmtpTransport(settings) as transport:
            failed = [
                await transport.send(sender=SENDER, recipients=[READER], message=build(n))
                for n in range(3)
            ]
            started = time.monotonic()
            result = await transport.send(sender=SENDER, recipients=[READER], message=build(3))
            return [*failed, result], time.monotonic() - started, transport.stats

    with caplog.at_level(logging.INFO, logger="publisher.delivery"):
        results, waited, stats = asyncio.run(scenario())
    assert [r.outcome for r in results] == [Outcome.TEMPORARY] * 3 + [Outcome.DELIVERED]
    assert waited >= 0.55
    assert stats.pauses == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("3 consecutive errors" in m and "pausing for 0.6 s" in m for m in messages)
    assert any("resuming" in m for m in messages)


def test_errors_interrupted_by_a_success_do_not_pause(server: MailServer) -> None:
    """The threshold counts consecutive errors only: a delivery in between starts over."""
    server.handler.fail("DATA", "451 a", "451 b", "250 OK", "451 c", "451 d")
    settings = server.settings(connections=1, error_threshold=3, pause=timedelta(seconds=30))
    started = time.monotonic()
    _, stats = asyncio.run(send_each(settings, [build(n) for n in range(6)]))
    assert stats.pauses == 0
    assert time.monotonic() - started < 5


def test_nothing_is_delivered_twice(server: MailServer) -> None:
    """Under faults and concurrency, the server holds each delivered message exactly once."""
    server.handler.fail("DATA", "451 4.3.0 a", DROP, "421 4.3.2 bye", "554 5.7.1 no")
    server.handler.fail("RCPT", "450 4.2.1 busy", "421 4.3.2 bye")
    messages = [build(n) for n in range(40)]
    results, stats = asyncio.run(send_all(server.settings(connections=3), messages))
    received = Counter(m.content for m in server.handler.messages)
    assert max(received.values()) == 1
    delivered = {m for m, r in zip(messages, results, strict=True) if r.delivered}
    assert set(received) == delivered
    assert len(delivered) == 40 - 6
    assert (stats.sent, stats.temporary, stats.permanent) == (34, 5, 1)


def test_eight_bit_messages_and_international_addresses(server: MailServer) -> None:
    """8-bit bodies go with BODY=8BITMIME (RFC 6152), non-ASCII addresses with SMTPUTF8."""
    message = build(1, body="Привет, мир.")
    results, _ = asyncio.run(
        send_all(server.settings(), [message], recipients=["читатель@example.org"])
    )
    assert results[0].outcome is Outcome.DELIVERED
    received = server.handler.messages[0]
    assert received.content == message
    assert received.recipients == ("читатель@example.org",)
    assert {"BODY=8BITMIME", "SMTPUTF8"} <= set(received.mail_options)


def test_programming_and_configuration_errors_raise(server: MailServer, tmp_path: Path) -> None:
    """DeliveryError for a wrong call or wrong settings, never for a server's answer."""
    with pytest.raises(DeliveryError, match="no password"):
        SmtpTransport(server.settings(username=USERNAME))
    with pytest.raises(DeliveryError, match=r"smtp\.ca_file") as caught:
        SmtpTransport(server.settings(tls=TlsMode.TLS, ca_file=tmp_path / "missing.pem"))
    assert isinstance(caught.value.__cause__, OSError)

    async def misuse() -> None:
        transport = SmtpTransport(server.settings())
        with pytest.raises(DeliveryError, match="outside"):
            await transport.send(sender=SENDER, recipients=[READER], message=build(1))
        async with transport:
            with pytest.raises(DeliveryError, match="no recipients"):
                await transport.send(sender=SENDER, recipients=[], message=build(1))
            with pytest.raises(DeliveryError, match="not the string"):
                await transport.send(sender=SENDER, recipients=READER, message=build(1))
            with pytest.raises(DeliveryError, match="bytes"):
                await transport.send(sender=SENDER, recipients=[READER], message="text")  # type: ignore[arg-type]
            with pytest.raises(DeliveryError, match="control characters"):
                await transport.send(sender=SENDER, recipients=["a@b\r\nRSET"], message=build(1))
            with pytest.raises(DeliveryError, match="cannot send") as bad:
                await transport.send(sender=SENDER, recipients=["a b@c"], message=build(1))
            assert isinstance(bad.value.__cause__, ValueError)
        with pytest.raises(DeliveryError, match="closed"):
            await transport.send(sender=SENDER, recipients=[READER], message=build(1))

    asyncio.run(misuse())
    assert server.handler.messages == []


def test_a_failed_tls_handshake_is_temporary(server: MailServer) -> None:
    """tls = tls against a server that speaks plain SMTP: TEMPORARY, the handshake named."""
    results, _ = asyncio.run(send_each(server.settings(tls=TlsMode.TLS), [build(1)]))
    assert (results[0].outcome, results[0].code, results[0].stage) == (
        Outcome.TEMPORARY,
        None,
        Stage.CONNECT,
    )
    assert results[0].detail.startswith(f"TLS handshake with {HOST}:{server.port} failed")
    assert server.handler.mail_commands == 0


def test_messages_go_out_as_sendmail_would_send_them(server: MailServer) -> None:
    """Bytes with lone LF and CR and lines starting with a period arrive as aiosmtplib's
    sendmail sends them (CRLF, dots kept through the stuffing), SIZE counting that form."""
    raw = b"Subject: dots\n\n.leading\r\n..two\rlone CR\r\n.\r\nno final newline"
    results, _ = asyncio.run(send_each(server.settings(), [raw]))
    assert results[0].delivered
    [received] = server.handler.messages
    expected = normalize_message_line_endings(raw)
    assert received.content == expected
    assert f"SIZE={len(expected)}" in [option.upper() for option in received.mail_options]


def test_a_canonical_message_is_sent_as_it_is(server: MailServer) -> None:
    """A CanonicalMessage (what MessageTemplate.personalize makes) arrives byte for byte."""
    message = CanonicalMessage(build(1))
    results, _ = asyncio.run(send_each(server.settings(), [message]))
    assert results[0].delivered
    assert [m.content for m in server.handler.messages] == [build(1)]


def test_an_address_that_could_inject_a_command_is_refused(server: MailServer) -> None:
    """A sender or recipient aiosmtplib refuses (a space in it) is refused before anything
    is sent, as a DeliveryError."""
    for sender, recipient in ((SENDER, "a b@example.org"), ("a b@example.org", READER)):

        async def go(sender: str = sender, recipient: str = recipient) -> None:
            async with SmtpTransport(server.settings()) as transport:
                await transport.send(sender=sender, recipients=[recipient], message=build(1))

        with pytest.raises(DeliveryError, match="cannot send"):
            asyncio.run(go())
    assert server.handler.mail_commands == 0
