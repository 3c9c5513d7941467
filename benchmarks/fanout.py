"""The daily fan-out: plan every digest, then personalize every queued message into bytes.

``measure_fanout`` is what the product does: match per distinct rule, render once per
rule and set of items, write the outbox (``publisher.delivery.planning.plan``), then per
message what the worker does before SMTP (a signed unsubscribe token, the template read
back from the outbox once per body, ``MessageTemplate.personalize``).

``measure_naive`` is what a simple sender would do over the same data: per recipient, one
full render (``EmailRenderer.render_digest`` rendering whole: every template as written,
the whole document's CSS inlined; item blocks still cached) and one
``email.message.EmailMessage`` built and serialized. It is timed on a sample of
recipients and its rate extrapolated.
"""

from __future__ import annotations

import random
import resource
import statistics
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

import synthetic
from harness import Context, Figures, peak_rss, timed
from sqlalchemy import Engine, func, select

from publisher.delivery._templates import Templates
from publisher.delivery.message import MessageTemplate, make_message_id
from publisher.delivery.planning import last_send_time, plan
from publisher.matching import ItemIndex, RuleMatches, match
from publisher.matching.language import language_chain
from publisher.rendering.emails import EmailRenderer
from publisher.settings import Settings
from publisher.store.database import open_store
from publisher.store.items import StoredItem, assign_entry_ids, load_items, save_items
from publisher.store.outbox import load_segments
from publisher.store.schema import bodies, outbox, segments
from publisher.subscriptions import Subscriptions, load_subscriptions
from publisher.subscriptions.model import Frequency, Subscriber
from publisher.unsubscribe import make_token, unsubscribe_mailto, unsubscribe_url

# The pass: a Tuesday evening in UTC, when every daily digest of every time zone in the
# synthetic file has come due once since the day's items were collected.
NOW = datetime(2025, 3, 4, 22, 0, tzinfo=UTC)
REGISTERED = NOW - timedelta(days=3)  # the addresses were first seen then
COLLECTED = NOW - timedelta(days=1, hours=2)  # the day's items were stored then
# Everyone on a daily digest; the rest of the default mix (locales, zones, hours, fields,
# countries, groups, exclusions, text format) as it is.
DAILY = synthetic.Mix(immediate=0.0, weekly=0.0)
# Rows a worker claims at a time (its default batch).
BATCH = 200


def measure_fanout(context: Context) -> Figures:
    """Plan a daily-digest pass for every subscriber, then personalize every message."""
    directory = context.directory / "fanout"
    directory.mkdir()
    path = synthetic.write_subscriptions(directory, context.fanout_subscribers, mix=DAILY)
    subscriptions = load_subscriptions(path, taxonomy=context.taxonomy, locales=synthetic.LOCALES)
    settings = context.settings(database_url=f"sqlite:///{directory / 'publisher.db'}")
    engine = open_store(settings.database_url)
    renderer = _renderer(settings, subscriptions)
    # The addresses are known before the items come: none of them is back catalogue.
    plan(engine, subscriptions, renderer=renderer, settings=settings, now=REGISTERED)
    fetched = synthetic.items(
        subscriptions.taxonomy, per_day=context.items_per_day, days=1, end=COLLECTED
    )
    with engine.begin() as conn:
        save_items(conn, "synthetic", fetched, now=COLLECTED)
        assign_entry_ids(conn, settings.entry_id_prefix)

    planned: dict[str, float] = {}
    personalized: dict[str, float] = {}
    with peak_rss(planned), timed(context, "fanout_plan") as planning:
        report = plan(
            engine,
            subscriptions,
            renderer=renderer,
            settings=settings,
            now=NOW,
            processes=context.plan_processes,
        )
    rows, contents = _queued(engine)
    with engine.connect() as conn:
        shared_bytes = conn.execute(select(func.sum(func.length(segments.c.content)))).scalar()
    stored = sum(map(len, contents.values())) + (shared_bytes or 0)
    with peak_rss(personalized), timed(context, "fanout_personalize") as personalizing:
        sizes = _personalize_all(engine, rows, contents, settings)
    messages = report.digests
    if messages != len(rows):
        raise RuntimeError(f"plan queued {messages} digests but the outbox holds {len(rows)}")
    median = sorted(range(len(sizes)), key=sizes.__getitem__)[len(sizes) // 2]
    recipient, message_id, body_id = rows[median]
    seconds = planning.seconds + personalizing.seconds
    with engine.connect() as conn:
        shown = load_segments(conn, MessageTemplate.segment_digests(contents[body_id]))
        template = MessageTemplate.from_bytes(contents[body_id], segments=shown)
        groups = match(
            subscriptions, ItemIndex.build(load_items(conn)), default_locale=settings.default_locale
        )
    engine.dispose()
    context.shared["fanout_msgs_per_s"] = messages / seconds
    context.shared["fanout"] = {
        "settings": settings,
        "subscriptions": subscriptions,
        "groups": groups,
        # A message of the median size, and its template, for the SMTP comparison.
        "body": contents[body_id],
        "segments": shown,  # the body's segments, stored with it wherever it is queued
        "message": _personalize(
            template,
            recipient,
            message_id,
            settings,
            parseaddr(settings.sender.from_)[1],
        ),
    }
    figures: Figures = {
        "fanout_subscribers": len(subscriptions.subscribers),
        "fanout_distinct_rules": len(subscriptions.rules()),
        "fanout_items": len(fetched),
        "fanout_messages": messages,
        "fanout_bodies": len(contents),
        # What the pass stored: bodies and the segments they share, in MB.
        "fanout_stored_mb": round(stored / 1e6, 1),
        "message_kb_median": round(statistics.median(sizes) / 1024, 1),
        "message_kb_max": round(max(sizes) / 1024, 1),
        "plan_s": round(planning.seconds, 2),
        "personalize_s": round(personalizing.seconds, 2),
        "personalize_msgs_per_s": round(messages / personalizing.seconds),
        "fanout_s": round(seconds, 2),
        "fanout_msgs_per_s": round(messages / seconds),
        "fanout_rss_before_mb": round(planned["before_mb"], 1),
        # The largest worker process that rendered bodies (0: none ran); its resident
        # memory includes the pages it still shares with this process.
        "plan_worker_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }
    if "peak_mb" in planned and "peak_mb" in personalized:
        figures["plan_peak_rss_mb"] = round(planned["peak_mb"], 1)
        figures["personalize_peak_rss_mb"] = round(personalized["peak_mb"], 1)
        figures["fanout_peak_rss_mb"] = max(
            figures["plan_peak_rss_mb"], figures["personalize_peak_rss_mb"]
        )
    figures.update(_sharing(groups, settings.default_locale))
    figures["personalize_reused_msgs_per_s"] = _personalize_rate(template, settings)
    if context.fanout_subscribers < context.subscribers:
        context.note(
            f"the fan-out ran on {context.fanout_subscribers:,} addresses, not "
            f"{context.subscribers:,}: at {1000 * planning.seconds / messages:.1f} ms a "
            f"message planning {context.subscribers:,} would take about "
            f"{planning.seconds * context.subscribers / context.fanout_subscribers / 60:.0f} "
            "min if it stayed linear (--fanout-subscribers to change it)"
        )
    return figures


def _sharing(groups: list[RuleMatches], default_locale: str) -> Figures:
    """How many bodies would be rendered if they were shared more widely than per rule.

    Today a body is per rule and set of items. It could be shared by every subscriber
    reading the same items in the same languages if nothing else of the rule showed in
    it (the rule's description, the time zone of the dates): these are the counts.
    """
    chains = {
        g.rule: (
            g.rule.locale,
            language_chain(g.rule.locale, g.rule.fallback_locales, default_locale),
        )
        for g in groups
    }
    return {
        "fanout_rule_item_sets": len({(g.rule, g.item_ids) for g in groups}),
        "fanout_zone_language_item_sets": len(
            {(chains[g.rule], g.rule.timezone, g.item_ids) for g in groups}
        ),
        "fanout_language_item_sets": len({(chains[g.rule], g.item_ids) for g in groups}),
        "fanout_item_sets": len({g.item_ids for g in groups}),
    }


def _personalize_rate(template: MessageTemplate, settings: Settings) -> int:
    """Messages a second personalized from one template: the per-recipient cost alone."""
    sender = parseaddr(settings.sender.from_)[1]
    count = 10_000
    start = time.perf_counter()
    for number in range(count):
        address = f"reader{number}@example.net"
        _personalize(template, address, f"<{number}@example.org>", settings, sender)
    return round(count / (time.perf_counter() - start))


def measure_naive(context: Context) -> Figures:
    """Per recipient one Jinja render and one EmailMessage, on a sample of the fan-out's."""
    shared = context.shared["fanout"]
    settings: Settings = shared["settings"]
    subscriptions: Subscriptions = shared["subscriptions"]
    groups: list[RuleMatches] = shared["groups"]
    pairs = [(group, subscriber) for group in groups for subscriber in group.subscribers]
    sample = random.Random(0).sample(pairs, min(context.naive_sample, len(pairs)))
    renderer = _renderer(settings, subscriptions, assemble=False)
    sizes = []
    with timed(context, "naive") as naive:
        for group, subscriber in sample:
            items = tuple(m.item for m in group.items)  # all new since the address came
            sizes.append(len(_naive_message(renderer, settings, items, subscriber)))
    rate = len(sample) / naive.seconds
    fanout_rate = context.shared.get("fanout_msgs_per_s")
    figures: Figures = {
        "naive_sample": len(sample),
        "naive_message_kb_median": round(statistics.median(sizes) / 1024, 1),
        "naive_ms_per_msg": round(1000 * naive.seconds / len(sample), 2),
        "naive_msgs_per_s": round(rate),
    }
    if fanout_rate:
        figures["fanout_vs_naive"] = round(fanout_rate / rate, 1)
    return figures


def _renderer(
    settings: Settings, subscriptions: Subscriptions, *, assemble: bool = True
) -> EmailRenderer:
    """As ``publisher run`` makes it (see publisher.cli._context)."""
    return EmailRenderer(
        taxonomy=subscriptions.taxonomy,
        base_url=settings.base_url,
        organisation=parseaddr(settings.sender.from_)[0] or settings.list_id,
        assemble=assemble,
    )


def _queued(engine: Engine) -> tuple[list[tuple[str, str, int]], dict[int, bytes]]:
    """The outbox as the worker claims it: recipient, Message-ID, body; bodies by id."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.recipient, outbox.c.message_id, outbox.c.body_id).order_by(outbox.c.id)
        ).all()
        contents: dict[int, bytes] = {
            row.id: row.content for row in conn.execute(select(bodies.c.id, bodies.c.content))
        }
    return [(row.recipient, row.message_id, row.body_id) for row in rows], contents


def _personalize_all(
    engine: Engine, rows: list[tuple[str, str, int]], contents: dict[int, bytes], settings: Settings
) -> list[int]:
    """What the worker does for each row before SMTP; the sizes of the messages. Rows
    are taken in the worker's batches, each batch's templates parsed and their segments
    read from the store as the worker does (``Templates.prepare`` after a claim)."""
    sender = parseaddr(settings.sender.from_)[1]
    templates = Templates(engine, dkim=None)
    sizes: list[int] = []
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        templates.prepare(contents[body_id] for _, _, body_id in batch)
        sizes.extend(
            len(
                _personalize(
                    templates.get(contents[body_id]), recipient, message_id, settings, sender
                )
            )
            for recipient, message_id, body_id in batch
        )
    return sizes


def _personalize(
    template: MessageTemplate, recipient: str, message_id: str, settings: Settings, sender: str
) -> bytes:
    """``Worker._personalize``: a signed token, its two URIs, the message's bytes."""
    token = make_token(recipient, secret_key=settings.secret_key, list_id=settings.list_id)
    return template.personalize(
        recipient=recipient,
        recipient_name=None,
        message_id=message_id,
        unsubscribe_url=unsubscribe_url(settings.base_url, token),
        unsubscribe_mailto=unsubscribe_mailto(token, sender=sender),
    )


def _naive_message(
    renderer: EmailRenderer,
    settings: Settings,
    items: tuple[StoredItem, ...],
    subscriber: Subscriber,
) -> bytes:
    """One recipient's digest the simple way: render, personalize the text, build MIME."""
    if subscriber.rule.frequency is not Frequency.DAILY:
        raise RuntimeError(f"{subscriber.email}: expected a daily digest")
    period_end = last_send_time(subscriber.rule, NOW)
    if period_end is None:
        raise RuntimeError(f"{subscriber.email}: no send time")
    rendered = renderer.render_digest(
        items,
        rule=subscriber.rule,
        default_locale=settings.default_locale,
        period_start=period_end - timedelta(days=1),
        period_end=period_end,
    )
    token = make_token(subscriber.email, secret_key=settings.secret_key, list_id=settings.list_id)
    url = unsubscribe_url(settings.base_url, token)
    sender = parseaddr(settings.sender.from_)[1]
    rendered = rendered.personalized(unsubscribe_url=url)
    message = EmailMessage(policy=SMTP)
    message["Date"] = format_datetime(NOW)
    message["From"] = settings.sender.from_
    if settings.sender.reply_to:
        message["Reply-To"] = settings.sender.reply_to
    message["To"] = subscriber.email
    message["Subject"] = rendered.subject
    message["Message-ID"] = make_message_id(
        key=f"daily:{period_end.date()}/{subscriber.email.lower()}", domain="example.org"
    )
    message["List-Id"] = f"OSCE News <{settings.list_id}.example.org>"
    message["List-Unsubscribe"] = f"<{url}>, <{unsubscribe_mailto(token, sender=sender)}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = rendered.locale.replace("_", "-")
    message.set_content(rendered.text, cte="base64")
    message.add_alternative(rendered.html, subtype="html", cte="base64")
    return message.as_bytes()
