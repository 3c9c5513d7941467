"""The SMTP transport: a pool of aiosmtplib connections to one mail server, reused.

aiosmtplib has no PIPELINING and one client serialises its commands, so throughput
comes from several clients, each kept open across many messages. ``send`` borrows one
from an :class:`asyncio.LifoQueue`, connects it if it is not (lazily, and again after a 421
or a lost connection), waits for the shared rate limit, and runs one mail transaction
(``_transaction.send_mail``: ``sendmail`` of the pre-built bytes without its regular
expression passes over them) under a per-message deadline. Whatever the server
answers comes back as a :class:`SendResult`; nothing is ever retried here, so nothing
is sent twice by the transport itself (the outbox decides what to try again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Self

from aiosmtplib import SMTP, SMTPException, SMTPHeloError

from publisher.delivery._classify import failure
from publisher.delivery._pacing import ErrorBrake, RateLimiter
from publisher.delivery._result import DeliveryError, Outcome, Refusal, SendResult, Stage
from publisher.delivery._transaction import send_mail
from publisher.settings import SmtpSettings, TlsMode

log = logging.getLogger(__name__)

# RFC 5321 §3.8: 421 means the server is closing the transmission channel.
_CLOSING = 421
# Failures that would hit every message alike, whatever its recipient.
_SESSION_STAGES = frozenset({Stage.CONNECT, Stage.AUTH, Stage.MAIL})
# How long a polite QUIT may take when the transport closes.
_QUIT_TIMEOUT = 5.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class TransportStats:
    """Counters since the transport opened, for metrics."""

    sent: int = 0  # messages the server accepted, for at least one recipient
    temporary: int = 0  # TEMPORARY results
    permanent: int = 0  # PERMANENT results
    connections: int = 0  # connections opened
    reconnects: int = 0  # of those, opened again after the previous one was closed or lost
    pauses: int = 0  # times the error threshold paused sending


@dataclass(slots=True)
class _Slot:
    """One connection of the pool: a client, connected lazily and reused."""

    client: SMTP
    opened: int = 0  # how many times it connected


class SmtpTransport:
    """``async with SmtpTransport(settings.smtp, password=settings.smtp_password) as t:``.

    ``send`` may be called from many tasks at once; each call uses one of
    ``settings.connections`` connections, which are reused across messages.
    """

    def __init__(self, settings: SmtpSettings, *, password: str | None = None) -> None:
        if settings.username is not None and password is None:
            raise DeliveryError(
                f"smtp.username = {settings.username!r} but no password; expected "
                "PUBLISHER_SMTP_PASSWORD or smtp.password_file"
            )
        self._settings = settings
        self._password = password
        self._server = f"{settings.host}:{settings.port}"
        self._timeout = settings.timeout.total_seconds()
        self._tls_context = _tls_context(settings)
        self._limiter = RateLimiter(settings.rate_per_second)
        self._brake = ErrorBrake(
            settings.error_threshold, settings.pause.total_seconds(), server=self._server
        )
        self._stats = TransportStats()
        self._slots: list[_Slot] = []
        self._idle: asyncio.Queue[_Slot] | None = None
        self._closed = False

    @property
    def stats(self) -> TransportStats:
        return self._stats

    async def __aenter__(self) -> Self:
        if self._idle is not None:
            raise DeliveryError("an SmtpTransport can be opened only once")
        # Last in, first out: a send takes the connection used most recently, so a
        # quiet transport keeps one connection open instead of cycling through all.
        self._idle = asyncio.LifoQueue()
        for _ in range(self._settings.connections):
            slot = _Slot(self._new_client())
            self._slots.append(slot)
            self._idle.put_nowait(slot)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for the sends under way, then QUIT every connection (RFC 5321 §4.1.1.10)."""
        if self._closed or self._idle is None:
            self._closed = True
            return
        self._closed = True
        for _ in self._slots:
            slot = await self._idle.get()
            await self._quit(slot.client)

    async def send(self, *, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        """Send ``message`` (the bytes of an RFC 5322 message, sent as they are) to
        ``recipients`` with ``sender`` as the envelope sender (the bounce address)."""
        recipients = _check(sender, recipients, message)
        idle = self._open_queue()
        slot = await idle.get()
        try:
            generation = await self._brake.wait()
            await self._limiter.wait()
            if self._closed:
                raise DeliveryError("the SMTP transport was closed while this send waited")
            result = await self._transaction(slot, sender, recipients, message)
        finally:
            idle.put_nowait(slot)
        self._count(result, generation)
        return result

    def _open_queue(self) -> asyncio.Queue[_Slot]:
        if self._idle is None:
            raise DeliveryError("SmtpTransport.send called outside `async with SmtpTransport(…)`")
        if self._closed:
            raise DeliveryError("SmtpTransport.send called after the transport was closed")
        return self._idle

    def _new_client(self) -> SMTP:
        settings = self._settings
        return SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=self._timeout,  # per socket operation; the deadline is in _transaction
            use_tls=settings.tls is TlsMode.TLS,
            # True requires STARTTLS (no downgrade when the server does not offer it);
            # False, not None, for "none": no opportunistic upgrade either.
            start_tls=settings.tls is TlsMode.STARTTLS,
            tls_context=self._tls_context,
        )

    async def _transaction(
        self, slot: _Slot, sender: str, recipients: list[str], message: bytes
    ) -> SendResult:
        client = slot.client
        stage = Stage.CONNECT
        try:
            async with asyncio.timeout(self._timeout):
                if not client.is_connected:
                    await client.connect()
                    self._opened(slot)
                    if self._settings.username is not None:
                        stage = Stage.AUTH
                        await client.login(self._settings.username, self._password or "")
                    stage = Stage.CONNECT
                    await _ehlo(client)
                elif client.is_ehlo_or_helo_needed:
                    await _ehlo(client)  # as sendmail does before MAIL
                stage = Stage.TRANSACTION
                refused, reply = await send_mail(
                    client,
                    sender,
                    recipients,
                    message,
                    options=_mail_options(client, sender, recipients, message),
                    timeout=None,  # the deadline above is shorter than any reply's timeout
                )
        except asyncio.CancelledError:
            client.close()  # the dialogue stopped at an unknown point: start afresh
            raise
        except (SMTPException, OSError) as exc:  # TimeoutError is an OSError
            result = failure(exc, stage, server=self._server, timeout=self._timeout)
            log.debug("SMTP %s: %s (%s)", self._server, result.detail, result.outcome)
            if result.code == _CLOSING or result.stage not in {Stage.MAIL, Stage.RCPT, Stage.DATA}:
                # After a 421, a lost connection or a timeout, the connection is closed
                # or out of step; after a failure while connecting, half set up.
                client.close()
            return result
        except ValueError as exc:
            # aiosmtplib checks every address before it sends anything. (After the
            # OSError branch: a certificate error is a ValueError too.)
            raise DeliveryError(f"cannot send from {sender!r} to {recipients!r}: {exc}") from exc
        return SendResult(
            outcome=Outcome.DELIVERED,
            code=250,  # aiosmtplib raises SMTPDataError for any other final reply
            detail=reply,
            stage=Stage.DATA,
            refused=tuple(
                Refusal(address, response.code, response.message)
                for address, response in refused.items()
            ),
        )

    def _opened(self, slot: _Slot) -> None:
        self._stats = replace(
            self._stats,
            connections=self._stats.connections + 1,
            reconnects=self._stats.reconnects + (1 if slot.opened else 0),
        )
        slot.opened += 1

    def _count(self, result: SendResult, generation: int) -> None:
        # The threshold counts connection errors and 4yz replies, and also 5yz replies
        # that are about the session rather than the message (a 535 at AUTH, a 550 to
        # the sender): those would fail every message alike.
        outcome = result.outcome
        failed = outcome is Outcome.TEMPORARY or (
            outcome is Outcome.PERMANENT and result.stage in _SESSION_STAGES
        )
        paused = self._brake.record(failed=failed, generation=generation, detail=result.detail)
        stats = self._stats
        # Built directly rather than with dataclasses.replace: once per message.
        self._stats = TransportStats(
            sent=stats.sent + (outcome is Outcome.DELIVERED),
            temporary=stats.temporary + (outcome is Outcome.TEMPORARY),
            permanent=stats.permanent + (outcome is Outcome.PERMANENT),
            connections=stats.connections,
            reconnects=stats.reconnects,
            pauses=stats.pauses + paused,
        )

    async def _quit(self, client: SMTP) -> None:
        try:
            if client.is_connected:
                with contextlib.suppress(SMTPException, OSError):
                    async with asyncio.timeout(min(self._timeout, _QUIT_TIMEOUT)):
                        await client.quit()
        finally:
            client.close()


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.tls is TlsMode.NONE:
        return None
    cafile = None if settings.ca_file is None else str(settings.ca_file)
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(
            f"smtp.ca_file = {cafile!r}: cannot load the CA certificates: {exc}"
        ) from exc
    if not settings.verify_certificates:
        # Only on the operator's explicit smtp.verify_certificates = false.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _check(sender: str, recipients: Sequence[str], message: bytes) -> list[str]:
    if isinstance(recipients, str):
        raise DeliveryError(
            f"recipients must be a sequence of addresses, not the string {recipients!r}"
        )
    if not recipients:
        raise DeliveryError(f"a message from {sender!r} with no recipients")
    if not isinstance(message, bytes):
        raise DeliveryError(
            f"the message must be the bytes of a built message, not {type(message).__name__}"
        )
    for address in (sender, *recipients):
        # aiosmtplib reads "a@b\r\nRSET" as a@b: refuse it rather than mail someone else.
        if _CONTROL.search(address):
            raise DeliveryError(f"the address {address!r} contains control characters")
    return list(recipients)


async def _ehlo(client: SMTP) -> None:
    """Say EHLO now, so that the server's extensions are known before MAIL."""
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except SMTPHeloError:
            await client.helo()  # RFC 5321 §4.1.1.1: a server that only knows HELO


def _mail_options(client: SMTP, sender: str, recipients: list[str], message: bytes) -> list[str]:
    options = []
    if not message.isascii() and client.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")  # RFC 6152
    if not (sender.isascii() and all(address.isascii() for address in recipients)):
        options.append("SMTPUTF8")  # RFC 6531; aiosmtplib checks that the server offers it
    return options
