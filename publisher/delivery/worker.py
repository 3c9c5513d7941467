"""The sending worker: claim due outbox rows, personalize, send, record each answer.

One pass claims a batch (a lease, committed before any SMTP traffic), sends its messages
concurrently through the transport's connection pool, and records each answer as soon
as it comes, so the window between the server's 250 and our record is one small
transaction. A crash leaves leased rows; after the lease another worker claims them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache

from sqlalchemy import Engine

from publisher.delivery import Outcome, SendResult, Stage, Transport
from publisher.delivery.message import DkimSigner, MessageTemplate, signer_from_settings
from publisher.metrics import METRICS, Metrics
from publisher.settings import Settings
from publisher.store.outbox import (
    Claimed,
    RetryPolicy,
    claim,
    mark_permanent,
    mark_sent,
    mark_skipped,
    mark_temporary,
    permanent_failures,
)
from publisher.store.suppressions import Reason, is_suppressed, suppress
from publisher.unsubscribe import make_token, unsubscribe_mailto, unsubscribe_url

log = logging.getLogger(__name__)

# A 5xx before RCPT (at connect, AUTH or MAIL FROM) is about us or the server, not the
# recipient: such failures are retried and never count toward suppressing an address.
_SESSION_STAGES = frozenset({Stage.CONNECT, Stage.AUTH, Stage.MAIL})


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.sent + other.sent,
            self.retried + other.retried,
            self.failed + other.failed,
            self.skipped + other.skipped,
        )


class Worker:
    """Sends what the outbox holds that is due, through one transport."""

    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        *,
        settings: Settings,
        owner: str | None = None,
        batch: int = 200,
        lease: timedelta = timedelta(minutes=10),
        policy: RetryPolicy | None = None,
        bounce_limit: int = 2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        metrics: Metrics = METRICS,
    ) -> None:
        self._engine = engine
        self._transport = transport
        self._settings = settings
        self._owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._batch = batch
        self._lease = lease
        self._policy = policy or RetryPolicy()
        self._bounce_limit = bounce_limit
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._metrics = metrics
        self._envelope_sender = parseaddr(settings.sender.from_)[1]
        # Read once per worker: a missing or broken key stops it before any claim.
        self._dkim = signer_from_settings(settings.dkim)
        self._in_flight = asyncio.Semaphore(settings.smtp.connections)

    async def run_once(
        self,
        *,
        stop: asyncio.Event | None = None,
        progress: Callable[[DeliveryReport], None] | None = None,
    ) -> DeliveryReport:
        """Send everything due now; return what became of it. With ``stop`` set, no new
        batch is claimed; the batch under way is finished and recorded. ``progress`` is
        called with each message's outcome (a progress bar)."""
        report = DeliveryReport()
        while not (stop is not None and stop.is_set()) and (
            rows := await asyncio.to_thread(self._claim)
        ):

            async def deliver(row: Claimed) -> DeliveryReport:
                result = await self._deliver(row)
                if progress is not None:
                    progress(result)
                return result

            results = await asyncio.gather(*(deliver(row) for row in rows))
            for result in results:
                report += result
        return report

    def _claim(self) -> list[Claimed]:
        with self._engine.begin() as conn:
            return claim(
                conn, owner=self._owner, limit=self._batch, lease=self._lease, now=self._clock()
            )

    async def _deliver(self, row: Claimed) -> DeliveryReport:
        report = await self._deliver_one(row)
        self._metrics.record_delivery(report)
        return report

    async def _deliver_one(self, row: Claimed) -> DeliveryReport:
        if await asyncio.to_thread(self._suppressed, row.recipient):
            await asyncio.to_thread(self._record_skip, row)
            return DeliveryReport(skipped=1)
        message = self._personalize(row)
        # A slot per connection, held from the send until its answer is committed: at any
        # moment at most `connections` messages can have been accepted by the server and
        # not yet recorded, which bounds what a crash can make us send twice.
        async with self._in_flight:
            with self._metrics.send_duration.time():
                result = await self._transport.send(
                    sender=self._envelope_sender, recipients=[row.recipient], message=message
                )
            return await asyncio.to_thread(self._record, row, result)

    def _personalize(self, row: Claimed) -> bytes:
        settings = self._settings
        token = make_token(row.recipient, secret_key=settings.secret_key, list_id=settings.list_id)
        return _template(row.body, self._dkim).personalize(
            recipient=row.recipient,
            recipient_name=None,
            message_id=row.message_id,
            unsubscribe_url=unsubscribe_url(settings.base_url, token),
            unsubscribe_mailto=unsubscribe_mailto(token, sender=self._envelope_sender),
        )

    def _suppressed(self, recipient: str) -> bool:
        with self._engine.connect() as conn:
            return is_suppressed(conn, recipient)

    def _record_skip(self, row: Claimed) -> None:
        with self._engine.begin() as conn:
            mark_skipped(conn, row.id, owner=self._owner, reason="suppressed", now=self._clock())

    def _record(self, row: Claimed, result: SendResult) -> DeliveryReport:
        now = self._clock()
        with self._engine.begin() as conn:
            if result.outcome is Outcome.DELIVERED:
                mark_sent(conn, row.id, now=now)
                return DeliveryReport(sent=1)
            detail = f"{result.stage}: {result.detail}"
            if result.outcome is Outcome.TEMPORARY or result.stage in _SESSION_STAGES:
                status = mark_temporary(
                    conn,
                    row.id,
                    owner=self._owner,
                    code=result.code,
                    error=detail,
                    now=now,
                    policy=self._policy,
                    rng=self._rng,
                )
                log.warning(
                    "%s to %s: %s (%s)",
                    row.message_id,
                    row.recipient,
                    detail,
                    status,
                    extra={"recipient": row.recipient, "message_id": row.message_id},
                )
                return DeliveryReport(retried=1) if status == "queued" else DeliveryReport(failed=1)
            mark_permanent(conn, row.id, owner=self._owner, code=result.code, error=detail, now=now)
            log.error(
                "%s to %s failed: %s",
                row.message_id,
                row.recipient,
                detail,
                extra={"recipient": row.recipient, "message_id": row.message_id},
            )
        # Counted in a transaction of its own, after the failure is committed: two
        # failures to one address recorded at once each see the other's (under READ
        # COMMITTED, a count in the same transaction would see only its own).
        with self._engine.begin() as conn:
            if permanent_failures(conn, row.recipient) >= self._bounce_limit:
                suppress(
                    conn,
                    row.recipient,
                    reason=Reason.BOUNCED,
                    now=now,
                    source="smtp",
                    detail=detail,
                )
        return DeliveryReport(failed=1)


@lru_cache(maxsize=256)
def _template(body: bytes, dkim: DkimSigner | None) -> MessageTemplate:
    """Bodies are shared by many rows: parse each once."""
    return MessageTemplate.from_bytes(body, dkim=dkim)
