"""What a subscriber's next message would be, and why each item is in it.

The same selection as :mod:`publisher.delivery.planning` (the rule's matches, minus what
was already queued for them, minus the back catalogue and what is older than the
outbox remembers), without queuing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from publisher.delivery.planning import look_back, next_send_time, previous_send_time
from publisher.matching import ItemIndex
from publisher.matching.explain import Explanation, explain
from publisher.rendering.emails import EmailRenderer, RenderedEmail
from publisher.settings import Settings
from publisher.store.items import StoredItem, load_items
from publisher.store.outbox import already_sent
from publisher.store.schema import subscriber_state
from publisher.subscriptions.model import Frequency, Subscriber


@dataclass(frozen=True, slots=True)
class Preview:
    subscriber: Subscriber
    send_at: datetime | None  # the digest's send time; None for an alert (sent at once)
    rendered: RenderedEmail | None  # None when nothing is due
    items: tuple[StoredItem, ...]
    reasons: tuple[Explanation, ...]
    note: str  # why there is nothing, or how many alerts are waiting


def preview(
    engine: Engine,
    subscriber: Subscriber,
    *,
    renderer: EmailRenderer,
    settings: Settings,
    at: datetime,
) -> Preview:
    rule = subscriber.rule
    key = subscriber.email.lower()
    with engine.connect() as conn:
        start = conn.execute(
            select(subscriber_state.c.first_seen_at).where(subscriber_state.c.recipient_key == key)
        ).scalar_one_or_none()
        items = load_items(conn, seen_since=look_back(settings, at))
        sent = already_sent(conn, [key])[key]
    index = ItemIndex.build(items)
    by_id = {item.id: item for item in items}
    matching = index.matching(rule)
    send_at = next_send_time(rule, at)  # None for an alert: it goes at once
    # A subscriber not yet registered joins now: what is stored is their back catalogue.
    # Nor does a message hold what is older than the outbox's memory when it goes.
    since = max(start if start is not None else at, look_back(settings, send_at or at))
    fresh = tuple(
        item
        for item in items  # newest first
        if item.id in matching and item.id not in sent and item.first_seen >= since
    )
    if not fresh:
        note = (
            "nothing new for this rule since the subscriber joined, "
            f"within the {settings.outbox.keep.days} days the outbox remembers"
            if start is not None
            else "a new subscriber: items collected before they joined are not sent"
        )
        return Preview(subscriber, None, None, (), (), note)
    default_locale = settings.default_locale
    if rule.frequency is Frequency.IMMEDIATE:
        first = fresh[-1]  # alerts go out oldest first
        rendered = renderer.render_alert(first, rule=rule, default_locale=default_locale)
        note = f"{len(fresh)} alert(s) waiting; this is the first"
        return Preview(subscriber, None, rendered, (first,), (explain(first, rule),), note)
    assert send_at is not None  # digests have send times
    period_start = previous_send_time(rule, send_at)
    assert period_start is not None
    rendered = renderer.render_digest(
        fresh,
        rule=rule,
        default_locale=default_locale,
        period_start=period_start,
        period_end=send_at,
    )
    reasons = tuple(explain(by_id[item.id], rule) for item in fresh)
    return Preview(subscriber, send_at, rendered, fresh, reasons, f"{len(fresh)} item(s)")


def describe(reason: Explanation) -> str:
    """One line: which part of the rule let the item in."""
    fields = (
        "all fields of work"
        if reason.field_part == "all-fields"
        else "field " + ", ".join(reason.fields)
    )
    countries = {
        "all-countries": "all countries",
        "no-country": "no country named (concerns everyone)",
    }.get(reason.country_part, "country " + ", ".join(reason.countries))
    return f"{fields}; {countries}"
