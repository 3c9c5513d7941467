"""Deciding what is due and queuing it: the step between matching and the outbox.

For ``immediate`` subscribers, one alert per new matching item; for ``daily`` and
``weekly`` ones, one digest per period once its local send time has passed, holding
every matching item not yet sent to them. What was queued is remembered per recipient
(the outbox's ``sent_items``), so after downtime the missed periods come as one digest
covering the whole gap, an item never goes twice to one person, and a period with
nothing new sends nothing. Items collected before an address first appeared in
``subscriptions.yaml`` are the back catalogue and are never sent to it.

Rendering happens once per rule and set of items; only the recipient-specific parts
are filled in when a message is sent (:mod:`publisher.delivery.message`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from publisher.delivery.message import MessageTemplate, make_message_id
from publisher.matching import ItemIndex, match
from publisher.metrics import METRICS, Metrics
from publisher.rendering.emails import EmailRenderer, RenderedEmail
from publisher.settings import Settings
from publisher.store.items import StoredItem, load_items
from publisher.store.outbox import NewMessage, already_sent, enqueue_many
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
    zone = ZoneInfo(rule.timezone)
    local = now.astimezone(zone)
    day = local.date()
    if rule.frequency is Frequency.WEEKLY:
        day -= timedelta(days=(day.weekday() - rule.weekday) % 7)
    step = timedelta(days=7 if rule.frequency is Frequency.WEEKLY else 1)
    while True:
        candidate = datetime.combine(day, rule.send_at, tzinfo=zone).astimezone(UTC)
        if candidate <= now:
            return candidate
        day -= step


def plan(
    engine: Engine,
    subscriptions: Subscriptions,
    *,
    renderer: EmailRenderer,
    settings: Settings,
    now: datetime,
    dry_run: bool = False,
    metrics: Metrics = METRICS,
) -> PlanReport:
    """Queue every alert and digest due at ``now``, in one transaction."""
    with engine.connect() as conn, conn.begin() as transaction:
        report = _plan(conn, subscriptions, renderer=renderer, settings=settings, now=now)
        if dry_run:
            transaction.rollback()
    if not dry_run:  # counted once committed
        metrics.record_plan(report)
    return report


def _plan(
    conn: Connection,
    subscriptions: Subscriptions,
    *,
    renderer: EmailRenderer,
    settings: Settings,
    now: datetime,
) -> PlanReport:
    new_subscribers = register_subscribers(conn, subscriptions, now=now)
    starts = {
        row.recipient_key: row.first_seen_at
        for row in conn.execute(
            select(subscriber_state.c.recipient_key, subscriber_state.c.first_seen_at)
        )
    }
    items = load_items(conn)
    sent = already_sent(conn, starts)
    queue = _Queue(conn, renderer=renderer, settings=settings, now=now)
    for group in match(
        subscriptions, ItemIndex.build(items), default_locale=settings.default_locale
    ):
        # Subscribers of one rule who lack the same items get one rendering.
        by_items: dict[tuple[str, ...], list[Subscriber]] = defaultdict(list)
        fresh_items: dict[tuple[str, ...], tuple[StoredItem, ...]] = {}
        period_end = last_send_time(group.rule, now)
        for subscriber in group.subscribers:
            key = subscriber.email.lower()
            if period_end is not None and period_end < starts[key]:
                continue  # their first digest is at their next send time, not before
            fresh = tuple(
                m.item
                for m in group.items
                if m.item.first_seen >= starts[key] and m.item.id not in sent[key]
            )
            if fresh:
                ids = tuple(item.id for item in fresh)
                fresh_items[ids] = fresh
                by_items[ids].append(subscriber)
        for ids, subscribers in by_items.items():
            queue.add(group.rule, fresh_items[ids], subscribers)
    queue.flush()
    return PlanReport(queue.alerts, queue.digests, new_subscribers)


class _Queue:
    """Renders each body once and writes the outbox in batches of about ``batch`` rows."""

    def __init__(
        self,
        conn: Connection,
        *,
        renderer: EmailRenderer,
        settings: Settings,
        now: datetime,
        batch: int = 2_000,
    ) -> None:
        self._conn = conn
        self._renderer = renderer
        self._settings = settings
        self._now = now
        name, address = parseaddr(settings.sender.from_)
        self._list_name = name or settings.list_id
        self._domain = address.rpartition("@")[2] or "localhost"
        self._batch = batch
        # Alerts and digests are written apart, so each write counts one kind.
        self._pending: dict[Frequency, list[tuple[bytes, list[NewMessage]]]] = {
            Frequency.IMMEDIATE: [],
            Frequency.DAILY: [],
        }
        self._pending_rows = 0
        self.alerts = self.digests = 0

    def add(
        self, rule: Rule, items: tuple[StoredItem, ...], subscribers: Sequence[Subscriber]
    ) -> None:
        default_locale = self._settings.default_locale
        if rule.frequency is Frequency.IMMEDIATE:
            for item in items:
                rendered = self._renderer.render_alert(
                    item, rule=rule, default_locale=default_locale
                )
                self._enqueue(
                    Frequency.IMMEDIATE, rendered, f"alert:{item.id}", (item,), subscribers
                )
            return
        period_end = last_send_time(rule, self._now)
        if period_end is None:
            return
        step = timedelta(days=7 if rule.frequency is Frequency.WEEKLY else 1)
        local_day = period_end.astimezone(ZoneInfo(rule.timezone)).date().isoformat()
        rendered = self._renderer.render_digest(
            items,
            rule=rule,
            default_locale=default_locale,
            period_start=period_end - step,
            period_end=period_end,
        )
        self._enqueue(
            Frequency.DAILY, rendered, f"{rule.frequency}:{local_day}", items, subscribers
        )

    def flush(self) -> None:
        """Write what is pending."""
        for kind, pending in self._pending.items():
            if not pending:
                continue
            added = enqueue_many(self._conn, pending, now=self._now)
            if kind is Frequency.IMMEDIATE:
                self.alerts += added
            else:
                self.digests += added
            pending.clear()
        self._pending_rows = 0

    def _enqueue(
        self,
        kind: Frequency,
        rendered: RenderedEmail,
        dedupe_key: str,
        items: tuple[StoredItem, ...],
        subscribers: Sequence[Subscriber],
    ) -> None:
        template = MessageTemplate.build(
            rendered,
            sender=self._settings.sender.from_,
            reply_to=self._settings.sender.reply_to,
            list_id=self._settings.list_id,
            list_name=self._list_name,
            domain=self._domain,
            date=self._now,
        )
        ids = tuple(item.id for item in items)
        messages = [
            NewMessage(
                recipient=s.email,
                dedupe_key=dedupe_key,
                item_ids=ids,
                message_id=make_message_id(
                    key=f"{dedupe_key}/{s.email.lower()}", domain=self._domain
                ),
            )
            for s in subscribers
        ]
        self._pending[kind].append((template.to_bytes(), messages))
        self._pending_rows += len(messages)
        if self._pending_rows >= self._batch:
            self.flush()
