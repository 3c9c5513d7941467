"""The sending worker: claim due outbox rows, personalize, send, record each answer.

A pass claims batches (a lease, committed before any SMTP traffic) and runs one sender
per SMTP connection. Each sender takes the next row (``_feed.Feed``: the suppression
list read per batch and again every ``recheck``), sends it, and waits for its answer to
be recorded before it takes another: at any moment at most ``smtp.connections``
messages can have been accepted by the server and not yet recorded, which bounds what a
crash can make us send twice. A crash leaves leased rows; after the lease another
worker claims them.

The 250s of a round are recorded together (``_group.Group``: one transaction for the
answers that come in while no other is awaited, or within a millisecond), on a store
connection the pass keeps; any other answer (retry, failure, suppression) on the
sender's own. On SQLite these transactions run inline, on the event loop: a commit in
WAL mode takes tens of microseconds, less than handing it to a thread; only when another
writer holds the database do they move to a thread (``_slot.Slot``). On a database
across a network (PostgreSQL) they always run in a thread, so that waiting for the
server never holds up the other connections, and the answers that come in meanwhile
join the next transaction.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from sqlalchemy import Connection, Engine

from publisher.delivery import Outcome, SendResult, Stage, Transport
from publisher.delivery._feed import Batch, Checked, Feed
from publisher.delivery._group import Group
from publisher.delivery._slot import Slot
from publisher.delivery._templates import Templates
from publisher.delivery._transaction import CanonicalMessage
from publisher.delivery.message import signer_from_settings
from publisher.metrics import METRICS, Metrics
from publisher.settings import Settings
from publisher.store.outbox import (
    Claimed,
    RetryPolicy,
    claim,
    mark_all_sent,
    mark_permanent,
    mark_skipped,
    mark_temporary,
    permanent_failures,
)
from publisher.store.suppressions import Reason, suppress, suppressed_among
from publisher.unsubscribe import make_token, unsubscribe_mailto, unsubscribe_url

log = logging.getLogger(__name__)

# A 5xx before RCPT (at connect, AUTH or MAIL FROM) is about us or the server, not the
# recipient: such failures are retried and never count toward suppressing an address.
_SESSION_STAGES = frozenset({Stage.CONNECT, Stage.AUTH, Stage.MAIL})
# How old the suppression list read for a batch may be when a message of it starts.
RECHECK = timedelta(milliseconds=100)


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
        recheck: timedelta = RECHECK,
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
        self._recheck = recheck.total_seconds()
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._metrics = metrics
        self._envelope_sender = parseaddr(settings.sender.from_)[1]
        # Read once per worker: a missing or broken key stops it before any claim.
        self._templates = Templates(engine, dkim=signer_from_settings(settings.dkim))
        self._senders = settings.smtp.connections
        # Held from a send until its answer is recorded, by every pass of this worker,
        # even passes run at once: never more than `connections` answers unrecorded.
        self._in_flight = asyncio.Semaphore(settings.smtp.connections)

    async def run_once(
        self,
        *,
        stop: asyncio.Event | None = None,
        progress: Callable[[DeliveryReport], None] | None = None,
    ) -> DeliveryReport:
        """Send everything due now; return what became of it. With ``stop`` set, no new
        batch is claimed; the batches under way are finished and recorded. ``progress``
        is called with each message's outcome (a progress bar)."""
        feed = Feed(
            claim=lambda: asyncio.to_thread(self._claim),
            check=lambda recipients: asyncio.to_thread(self._check, recipients),
            recheck=self._recheck,
            ahead=self._batch // 4,
            stop=stop,
        )
        reports: list[DeliveryReport] = []

        def done(report: DeliveryReport) -> None:
            self._metrics.record_delivery(report)
            reports.append(report)
            if progress is not None:
                progress(report)

        slots = [Slot(self._engine) for _ in range(self._senders)]
        group_slot = Slot(self._engine)
        sent = Group(group_slot, _record_sent)
        try:
            senders = [asyncio.create_task(self._sender(feed, slot, sent, done)) for slot in slots]
            outcomes = await asyncio.gather(*senders, return_exceptions=True)
        finally:
            await feed.aclose()
            for slot in (*slots, group_slot):
                await slot.aclose()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(reports, DeliveryReport())

    async def _sender(
        self,
        feed: Feed,
        slot: Slot,
        sent: Group[tuple[int, datetime]],
        done: Callable[[DeliveryReport], None],
    ) -> None:
        """Send and record one message at a time until the feed runs dry: a message the
        server took is recorded with the others' that came in at the same time (``sent``),
        any other answer on the sender's own connection (``slot``). On an error, the
        other senders finish and record the message they have, and take no more."""
        try:
            while (taken := await feed.take()) is not None:
                row, suppressed = taken
                if suppressed:
                    done(await slot.run(self._record_skip, row))
                    continue
                message = self._personalize(row)
                async with self._in_flight:
                    with sent.expect() as answer:
                        with self._metrics.send_duration.time():
                            result = await self._transport.send(
                                sender=self._envelope_sender,
                                recipients=[row.recipient],
                                message=message,
                            )
                        delivered = result.outcome is Outcome.DELIVERED
                        if delivered:
                            await answer.record((row.id, self._clock()))
                    # Any other answer is recorded out of the group's round.
                    report = (
                        DeliveryReport(sent=1)
                        if delivered
                        else await slot.run(self._record, row, result)
                    )
                done(report)
        except BaseException:
            feed.halt()
            raise

    def _claim(self) -> Batch:
        with self._engine.begin() as conn:
            rows = claim(
                conn, owner=self._owner, limit=self._batch, lease=self._lease, now=self._clock()
            )
        self._templates.prepare(row.body for row in rows)
        # Read after the claim has committed, so no earlier than any message of it starts.
        return Batch(
            rows,
            self._check([row.recipient for row in rows]) if rows else Checked(frozenset(), 0.0),
        )

    def _check(self, recipients: list[str]) -> Checked:
        started = time.monotonic()
        with self._engine.connect() as conn:
            return Checked(frozenset(suppressed_among(conn, recipients)), started)

    def _personalize(self, row: Claimed) -> bytes:
        settings = self._settings
        token = make_token(row.recipient, secret_key=settings.secret_key, list_id=settings.list_id)
        template = self._templates.get(row.body)
        message = template.personalize(
            recipient=row.recipient,
            recipient_name=None,
            message_id=row.message_id,
            unsubscribe_url=unsubscribe_url(settings.base_url, token),
            unsubscribe_mailto=unsubscribe_mailto(token, sender=self._envelope_sender),
        )
        # Marked (one copy, a few microseconds) so that the transport sends it as it is.
        return CanonicalMessage(message) if template.canonical else message

    def _record_skip(self, conn: Connection, row: Claimed) -> DeliveryReport:
        with conn.begin():
            mark_skipped(conn, row.id, owner=self._owner, reason="suppressed", now=self._clock())
        return DeliveryReport(skipped=1)

    def _record(self, conn: Connection, row: Claimed, result: SendResult) -> DeliveryReport:
        """Record an answer other than 250: retried, failed, and maybe suppressed."""
        now = self._clock()
        with conn.begin():
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
        with conn.begin():
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


def _record_sent(conn: Connection, sent: Sequence[tuple[int, datetime]]) -> None:
    with conn.begin():
        mark_all_sent(conn, sent)
