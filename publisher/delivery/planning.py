"""Deciding what is due and queuing it: the step between matching and the outbox.

For ``immediate`` subscribers, one alert per new matching item; for ``daily`` and
``weekly`` ones, one digest per period once its local send time has passed, holding
every matching item not yet sent to them. What was queued is remembered per recipient
(the outbox's ``sent_items``), so after downtime the missed periods come as one digest
covering the whole gap, an item never goes twice to one person, and a period with
nothing new sends nothing. Items collected before an address first appeared in
``subscriptions.yaml`` are the back catalogue and are never sent to it, and items
collected before the outbox's memory (``[outbox] keep``, 30 days) are sent to no one:
a pass reads a bounded window however long the newsroom has run.

Rendering happens once per rule and set of items; only the recipient-specific parts
are filled in when a message is sent (:mod:`publisher.delivery.message`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from publisher.delivery._bodies import BodyJob, BodyMaker, default_processes, make_bodies
from publisher.delivery.message import make_message_id
from publisher.matching import ItemIndex, match
from publisher.metrics import METRICS, Metrics
from publisher.rendering.emails import EmailRenderer
from publisher.settings import Settings
from publisher.store.items import load_items
from publisher.store.outbox import (
    NewMessage,
    already_sent,
    enqueue_many,
    queued_keys,
    save_segments,
)
from publisher.store.schema import subscriber_state
from publisher.subscriptions.model import Frequency, Rule, Subscriber, Subscriptions


@dataclass(frozen=True, slots=True)
class PlanReport:
    alerts: int = 0  # alert messages queued
    digests: int = 0  # digest messages queued
    new_subscribers: int = 0  # addresses seen for the first time


def register_subscribers(conn: Connection, subscriptions: Subscriptions, *, now: datetime) -> int:
    """Remember when each address first appeared; returns how many are new."""
    known = set(conn.execute(select(subscriber_state.c.recipient_key)).scalars())
    rows = [
        {"recipient_key": key, "first_seen_at": now}
        for key in {s.email.lower() for s in subscriptions.subscribers} - known
    ]
    if rows:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(subscriber_state).on_conflict_do_nothing(), rows)
    return len(rows)


def last_send_time(rule: Rule, now: datetime) -> datetime | None:
    """The latest scheduled digest time at or before ``now`` (UTC), ``None`` for alerts.

    Computed in the subscriber's zone from the wall-clock ``send_at``, so 08:00 stays
    08:00 across daylight-saving changes.
    """
    if rule.frequency is Frequency.IMMEDIATE:
        return None
    return _last_send_time(rule.frequency, rule.timezone, rule.send_at, rule.weekday, now)


@lru_cache(maxsize=4096)
def _last_send_time(
    frequency: Frequency, timezone: str, send_at: time, weekday: int, now: datetime
) -> datetime:
    """:func:`last_send_time` of a digest rule, by what it depends on: a pass asks it
    for thousands of rules that share a few schedules."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    day = local.date()
    if frequency is Frequency.WEEKLY:
        day -= timedelta(days=(day.weekday() - weekday) % 7)
    step = timedelta(days=7 if frequency is Frequency.WEEKLY else 1)
    while True:
        candidate = datetime.combine(day, send_at, tzinfo=zone).astimezone(UTC)
        if candidate <= now:
            return candidate
        day -= step


def look_back(settings: Settings, now: datetime) -> datetime:
    """The earliest collection time a pass at ``now`` still mails: what the outbox
    remembers (``[outbox] keep``), so that no older item can go to anyone twice."""
    return now - settings.outbox.keep


def next_send_time(rule: Rule, after: datetime) -> datetime | None:
    """The first digest time of ``rule`` later than ``after`` (UTC); ``None`` for alerts.

    Found by walking back with :func:`last_send_time` from beyond the next period, so
    that the two agree across daylight-saving changes (a day of 23 or 25 hours).
    """
    step = timedelta(days=7 if rule.frequency is Frequency.WEEKLY else 1)
    # A period is at most one step plus a daylight-saving shift long.
    candidate = last_send_time(rule, after + step + timedelta(hours=3))
    while candidate is not None:
        earlier = last_send_time(rule, candidate - timedelta(microseconds=1))
        if earlier is None or earlier <= after:
            return candidate
        candidate = earlier
    return None


def previous_send_time(rule: Rule, send_time: datetime) -> datetime | None:
    """The digest time before ``send_time``: where the period ending then began."""
    return last_send_time(rule, send_time - timedelta(microseconds=1))


def plan(
    engine: Engine,
    subscriptions: Subscriptions,
    *,
    renderer: EmailRenderer,
    settings: Settings,
    now: datetime,
    dry_run: bool = False,
    metrics: Metrics = METRICS,
    processes: int | None = None,
) -> PlanReport:
    """Queue every alert and digest due at ``now``.

    The rows are committed as they are written, some 2,000 at a time, so workers send
    the first digests while the rest are rendered. Each commit holds whole messages
    (the row and its items in ``sent_items``): a pass cut short is finished by the next,
    which finds what was queued and adds the rest, nothing twice. A dry run is one
    transaction, rolled back.

    A large pass renders its bodies in ``processes`` worker processes (default: one
    per CPU); a small one, or ``processes=1``, renders them here.
    """
    with engine.connect() as conn:
        report = _plan(
            conn,
            subscriptions,
            renderer=renderer,
            settings=settings,
            now=now,
            processes=default_processes() if processes is None else processes,
            commit=None if dry_run else conn.commit,
        )
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
            metrics.record_plan(report)
    return report


def _plan(
    conn: Connection,
    subscriptions: Subscriptions,
    *,
    renderer: EmailRenderer,
    settings: Settings,
    now: datetime,
    processes: int,
    commit: Callable[[], None] | None,
) -> PlanReport:
    new_subscribers = register_subscribers(conn, subscriptions, now=now)
    starts = {
        row.recipient_key: row.first_seen_at
        for row in conn.execute(
            select(subscriber_state.c.recipient_key, subscriber_state.c.first_seen_at)
        )
    }
    items = load_items(conn, seen_since=look_back(settings, now))
    groups = [
        (group, _Digest.due(group.rule, now))
        for group in match(
            subscriptions, ItemIndex.build(items), default_locale=settings.default_locale
        )
    ]
    # A digest already queued for its period is not rendered again (most of a pass's
    # subscribers, when the pass is one time zone's or follows a collection), and only
    # the others' records of what they were sent are read.
    wanted = {
        (subscriber.email.lower(), digest.dedupe_key)
        for group, digest in groups
        if digest is not None
        for subscriber in group.subscribers
    }
    queued = queued_keys(conn, wanted)
    alerted = {s.email.lower() for group, due in groups if due is None for s in group.subscribers}
    sent = already_sent(conn, {key for key, _ in wanted - queued} | alerted)
    queue = _Queue(BodyMaker(renderer, settings, {item.id: item for item in items}, now=now))
    for group, digest in groups:
        # Subscribers of one rule who lack the same items get one rendering.
        by_items: dict[tuple[str, ...], list[Subscriber]] = defaultdict(list)
        for subscriber in group.subscribers:
            key = subscriber.email.lower()
            if digest is not None and (
                digest.period[1] < starts[key]  # their first digest is at their next send time
                or (key, digest.dedupe_key) in queued
            ):
                continue
            fresh = tuple(
                m.item.id
                for m in group.items
                if m.item.first_seen >= starts[key] and m.item.id not in sent[key]
            )
            if fresh:
                by_items[fresh].append(subscriber)
        for ids, subscribers in by_items.items():
            queue.add(group.rule, ids, subscribers, digest=digest)
    if commit is not None:
        commit()  # the new addresses; and no write lock held while rendering
    report = queue.write(conn, processes=processes, commit=commit)
    return replace(report, new_subscribers=new_subscribers)


@dataclass(frozen=True, slots=True)
class _Digest:
    """The digest of a rule due now: its period and its key in the outbox."""

    period: tuple[datetime, datetime]
    dedupe_key: str  # "daily:2025-03-04": the local day of the send time

    @classmethod
    def due(cls, rule: Rule, now: datetime) -> _Digest | None:
        """``None`` for an alert rule."""
        period_end = last_send_time(rule, now)
        if period_end is None:
            return None
        period_start = previous_send_time(rule, period_end)
        assert period_start is not None
        local_day = period_end.astimezone(ZoneInfo(rule.timezone)).date().isoformat()
        return cls((period_start, period_end), f"{rule.frequency}:{local_day}")


# Rows written (and committed) at a time.
BATCH_ROWS = 2_000


class _Queue:
    """The bodies a pass needs, each with its recipients; written in batches of rows."""

    def __init__(self, maker: BodyMaker) -> None:
        self._maker = maker
        self._jobs: list[BodyJob] = []
        self._messages: list[tuple[bool, list[NewMessage]]] = []  # (is an alert, rows)

    def add(
        self,
        rule: Rule,
        item_ids: tuple[str, ...],
        subscribers: Sequence[Subscriber],
        *,
        digest: _Digest | None,
    ) -> None:
        """One digest of ``item_ids`` for ``subscribers``, or without ``digest`` one
        alert per item."""
        if digest is None:
            for item_id in item_ids:
                self._job(BodyJob(rule, (item_id,), None), f"alert:{item_id}", subscribers)
        else:
            self._job(BodyJob(rule, item_ids, digest.period), digest.dedupe_key, subscribers)

    def _job(self, job: BodyJob, dedupe_key: str, subscribers: Sequence[Subscriber]) -> None:
        domain = self._maker.domain
        self._jobs.append(job)
        self._messages.append(
            (
                job.period is None,
                [
                    NewMessage(
                        recipient=s.email,
                        dedupe_key=dedupe_key,
                        item_ids=job.item_ids,
                        message_id=make_message_id(
                            key=f"{dedupe_key}/{s.email.lower()}", domain=domain
                        ),
                    )
                    for s in subscribers
                ],
            )
        )

    def write(
        self, conn: Connection, *, processes: int, commit: Callable[[], None] | None
    ) -> PlanReport:
        """Render every body and queue its messages, calling ``commit`` after each batch
        of rows; the report counts the new rows."""
        counts = {True: 0, False: 0}  # alerts, digests
        # Alerts and digests are written apart, so each write counts one kind.
        pending: dict[bool, list[tuple[bytes, list[NewMessage]]]] = {True: [], False: []}
        shared: dict[bytes, bytes] = {}  # segments the pending bodies bring

        def flush() -> None:
            # The segments go in the transaction of the first body that shows them.
            save_segments(conn, shared, now=self._maker.now)
            shared.clear()
            for kind, entries in pending.items():
                counts[kind] += enqueue_many(conn, entries, now=self._maker.now)
                entries.clear()

        rows = 0
        bodies = make_bodies(self._maker, self._jobs, processes=processes)
        for (body, segments), (alert, messages) in zip(bodies, self._messages, strict=True):
            shared.update(segments)
            pending[alert].append((body, messages))
            rows += len(messages)
            if rows >= BATCH_ROWS:
                flush()
                if commit is not None:
                    commit()
                rows = 0
        flush()
        return PlanReport(alerts=counts[True], digests=counts[False])
