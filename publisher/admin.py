"""What administrators ask and do: who gets an item and when; putting messages back in line.

``publisher explain`` asks :func:`forecast` the planner's question for one item and every
rule of ``subscriptions.yaml``: the same matching (:func:`publisher.matching.match`), the
same back-catalogue and once-only rules, and the same digest periods
(:func:`publisher.delivery.planning.last_send_time`) as
:mod:`publisher.delivery.planning`, read without queuing anything. ``publisher retry``
uses :func:`retry`.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from publisher.delivery.planning import last_send_time, next_send_time
from publisher.matching import Explanation, MatchedItem, explain, match
from publisher.store.items import StoredItem
from publisher.store.outbox import (
    OutboxRow,
    Status,
    failed_recipients,
    make_due,
    queued_keys,
    requeue_failed,
    rows_for_item,
)
from publisher.store.schema import items, subscriber_state
from publisher.store.suppressions import Suppression, suppressions_of
from publisher.subscriptions.model import Frequency, Rule, Subscriber, Subscriptions


class Delivery(StrEnum):
    """Where an item stands for one subscriber of a rule that selects it."""

    SENT = "sent"  # in a message the mail server took
    QUEUED = "queued"  # in a message waiting in the outbox (due, or after a backoff)
    SENDING = "sending"  # in a message a worker is sending
    FAILED = "failed"  # in a message that failed for good
    SKIPPED = "skipped"  # in a message not sent: the address was suppressed by then
    SUPPRESSED = "suppressed"  # held back: the address is on the suppression list
    BACK_CATALOGUE = "back-catalogue"  # held back: collected before the subscriber joined
    DUE = "due"  # due now: goes with the next send pass
    SCHEDULED = "scheduled"  # goes with the digest at ``send_at``


@dataclass(frozen=True, slots=True)
class RecipientForecast:
    subscriber: Subscriber
    delivery: Delivery
    # When it goes or went (UTC): the digest's time (SCHEDULED, or DUE for a digest
    # whose time has come), the row's next attempt (QUEUED), its end (SENT); else None.
    send_at: datetime | None
    joined_at: datetime | None  # when the address first appeared; None: not yet
    row: OutboxRow | None  # the outbox row carrying the item to this address
    suppression: Suppression | None


@dataclass(frozen=True, slots=True)
class RuleForecast:
    """One rule of the file, what it makes of the item, and its subscribers."""

    rule: Rule
    subscribers: tuple[Subscriber, ...]  # in the order of the file
    explanation: Explanation
    matched: MatchedItem | None  # the translation they read; None when the rule says no
    recipients: tuple[RecipientForecast, ...]  # empty when the rule says no


@dataclass(frozen=True, slots=True)
class ItemForecast:
    item: StoredItem
    at: datetime
    rules: tuple[RuleForecast, ...]  # every rule, in the order of its first subscriber

    @property
    def receiving(self) -> tuple[RuleForecast, ...]:
        return tuple(r for r in self.rules if r.matched is not None)

    @property
    def not_receiving(self) -> tuple[RuleForecast, ...]:
        return tuple(r for r in self.rules if r.matched is None)


def digest_key(rule: Rule, period_end: datetime) -> str:
    """The outbox dedupe key of ``rule``'s digest for the period ending at ``period_end``.

    The key :mod:`publisher.delivery.planning` gives it (``daily:2025-03-04``): the local
    day of the send time.
    """
    local_day = period_end.astimezone(ZoneInfo(rule.timezone)).date().isoformat()
    return f"{rule.frequency}:{local_day}"


def forecast(
    conn: Connection,
    item: StoredItem,
    subscriptions: Subscriptions,
    *,
    default_locale: str,
    at: datetime,
) -> ItemForecast:
    """Who gets ``item``, in which language and when, as of ``at``; and who does not."""
    followers: dict[Rule, list[Subscriber]] = {}
    for subscriber in subscriptions.subscribers:
        followers.setdefault(subscriber.rule, []).append(subscriber)
    matched = {
        group.rule: group.items[0]
        for group in match(subscriptions, [item], default_locale=default_locale)
    }
    keys = [s.email.lower() for rule in matched for s in followers[rule]]
    rows = rows_for_item(conn, item.id, keys)
    suppressed = suppressions_of(conn, keys)
    joined = _joined(conn, keys)
    periods = {rule: last_send_time(rule, at) for rule in matched}
    digests_queued = queued_keys(
        conn,
        (
            (s.email.lower(), digest_key(rule, period_end))
            for rule, period_end in periods.items()
            if period_end is not None
            for s in followers[rule]
        ),
    )
    rules: list[RuleForecast] = []
    for rule, subscribers in followers.items():
        mine = matched.get(rule)
        recipients: list[RecipientForecast] = []
        for subscriber in subscribers if mine is not None else ():
            key = subscriber.email.lower()
            period_end = periods[rule]
            recipients.append(
                _recipient(
                    subscriber,
                    item,
                    at=at,
                    row=rows.get(key),
                    suppression=suppressed.get(key),
                    joined_at=joined.get(key),
                    period_end=period_end,
                    period_queued=period_end is not None
                    and (key, digest_key(rule, period_end)) in digests_queued,
                )
            )
        rules.append(
            RuleForecast(rule, tuple(subscribers), explain(item, rule), mine, tuple(recipients))
        )
    return ItemForecast(item, at, tuple(rules))


def _recipient(
    subscriber: Subscriber,
    item: StoredItem,
    *,
    at: datetime,
    row: OutboxRow | None,
    suppression: Suppression | None,
    joined_at: datetime | None,
    period_end: datetime | None,
    period_queued: bool,
) -> RecipientForecast:
    """The planner's decision for one address, in its order (see ``planning._plan``)."""

    def says(delivery: Delivery, send_at: datetime | None = None) -> RecipientForecast:
        return RecipientForecast(subscriber, delivery, send_at, joined_at, row, suppression)

    waiting = row is not None and row.status in (Status.QUEUED, Status.SENDING)
    if row is not None and not (waiting and suppression is not None):
        # The item is in a message already: it is never queued for this address again.
        when = {Status.QUEUED: row.next_attempt_at, Status.SENT: row.finished_at}
        return says(Delivery(row.status.value), when.get(row.status))
    if suppression is not None:  # the worker skips whatever is queued for it
        return says(Delivery.SUPPRESSED)
    if joined_at is None or item.first_seen < joined_at:
        # Not yet registered: the next pass registers it, after the item was collected.
        return says(Delivery.BACK_CATALOGUE)
    rule = subscriber.rule
    if rule.frequency is Frequency.IMMEDIATE:
        return says(Delivery.DUE)
    if period_end is not None and period_end >= joined_at and not period_queued:
        # This period's digest was not queued yet: the next pass queues it, with the item.
        return says(Delivery.DUE, period_end)
    return says(Delivery.SCHEDULED, next_send_time(rule, at))


def _joined(conn: Connection, keys: Collection[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), 500):
        query = select(subscriber_state.c.recipient_key, subscriber_state.c.first_seen_at).where(
            subscriber_state.c.recipient_key.in_(wanted[start : start + 500])
        )
        found.update((row.recipient_key, row.first_seen_at) for row in conn.execute(query))
    return found


@dataclass(frozen=True, slots=True)
class RetryReport:
    made_due: int  # queued rows that were waiting for their backoff
    requeued: int  # failed rows queued again
    # Failed rows left as they are: by the suppression reason of their address, and
    # those whose address is no longer in subscriptions.yaml.
    left_suppressed: dict[str, int]
    left_unsubscribed: int
    failed_included: bool  # whether failed rows were asked for


def retry(
    conn: Connection, *, now: datetime, subscribed: Collection[str] | None = None
) -> RetryReport:
    """Make every queued row due at ``now``; given ``subscribed`` (the lower-cased
    addresses of ``subscriptions.yaml``), also queue the failed rows to those of them
    that are not suppressed again, due at ``now`` with their attempts reset."""
    made_due = make_due(conn, now=now)
    if subscribed is None:
        return RetryReport(made_due, 0, {}, 0, failed_included=False)
    failed = failed_recipients(conn)
    suppressed = suppressions_of(conn, failed)
    left_suppressed: dict[str, int] = defaultdict(int)
    left_unsubscribed = 0
    chosen: list[str] = []
    for key, count in sorted(failed.items()):
        if (suppression := suppressed.get(key)) is not None:
            left_suppressed[suppression.reason.value] += count
        elif key not in subscribed:
            left_unsubscribed += count
        else:
            chosen.append(key)
    requeued = requeue_failed(conn, chosen, now=now)
    return RetryReport(
        made_due, requeued, dict(left_suppressed), left_unsubscribed, failed_included=True
    )


def similar_ids(conn: Connection, wanted: str, *, limit: int = 3) -> list[str]:
    """Item ids that look like ``wanted``: those containing it, else the closest spellings."""
    ids = list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())
    needle = wanted.strip().lower()
    containing = [item_id for item_id in ids if needle and needle in item_id.lower()]
    if containing:
        return containing[:limit]
    return difflib.get_close_matches(wanted, ids, n=limit, cutoff=0.6)
