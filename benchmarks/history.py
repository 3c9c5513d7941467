"""A newsroom that has run for a year: does a planning pass cost what it did on day one?

The store is given ``--history-days`` days of items (``--items`` a day) and the record of
every matching item as sent to each address, as if every pass had gone out, then the
day's new items; one pass is timed over it (a dry run: it reads, matches, renders and
writes as a pass does, then rolls back, so it can be repeated). Three stores:

- ``fresh``: no history, the first day;
- ``window``: what the outbox holds with ``outbox.keep`` at its default of 30 days,
  pruning having deleted the rest (items are never deleted: the feeds show them);
- ``unbounded``: a memory of ten years, which reads every item and every record ever
  stored, as every pass did before the window existed.

Passes alternate between the stores, best of ``--repeat``. Then, on the ``window``
store, the day's pass is made for real and the next one, an hour later after a
collection of five items, is timed: only alerts are due then.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import synthetic
from harness import Context, Figures
from sqlalchemy import Engine, func, select

from publisher.delivery.planning import look_back, plan
from publisher.matching import ItemIndex, match
from publisher.rendering.emails import EmailRenderer
from publisher.settings import Settings
from publisher.store.database import open_store
from publisher.store.items import assign_entry_ids, load_items, save_items
from publisher.store.schema import sent_items
from publisher.subscriptions import Subscriptions, load_subscriptions

NOW = datetime(2025, 3, 3, 22, 0, tzinfo=UTC)  # the pass: a Monday evening
DAY = timedelta(days=1)
STORES = {"fresh": "30d", "window": "30d", "unbounded": "3650d"}
_INSERT = "INSERT INTO sent_items (recipient_key, item_id, outbox_id) VALUES (?, ?, 0)"


def measure_history(context: Context) -> Figures:
    """One pass's seconds over each store, and what each store holds."""
    directory = context.directory / "history"
    directory.mkdir()
    path = synthetic.write_subscriptions(directory, context.history_subscribers)
    subscriptions = load_subscriptions(path, taxonomy=context.taxonomy, locales=synthetic.LOCALES)
    renderer = EmailRenderer(
        taxonomy=subscriptions.taxonomy,
        base_url=context.settings().base_url,
        organisation="OSCE News",
    )
    figures: Figures = {
        "history_subscribers": context.history_subscribers,
        "history_days": context.history_days,
    }
    stores: dict[str, tuple[Engine, Settings]] = {}
    for label, keep in STORES.items():
        settings = context.settings(
            database_url=f"sqlite:///{directory / f'{label}.db'}", outbox={"keep": keep}
        )
        engine = open_store(settings.database_url)
        days = 0 if label == "fresh" else context.history_days
        figures[f"history_{label}_sent_items_rows"] = _fill(
            engine, settings, subscriptions, renderer, context.items_per_day, days
        )
        stores[label] = (engine, settings)
    best = dict.fromkeys(stores, float("inf"))
    for _ in range(context.repeat):
        for label, (engine, settings) in stores.items():
            start = time.perf_counter()
            report = plan(
                engine,
                subscriptions,
                renderer=renderer,
                settings=settings,
                now=NOW,
                dry_run=True,
                processes=context.plan_processes,
            )
            best[label] = min(best[label], time.perf_counter() - start)
            figures[f"history_{label}_messages"] = report.alerts + report.digests
    for label in stores:
        figures[f"history_{label}_plan_s"] = round(best[label], 2)
    figures.update(_next_hour(*stores["window"], subscriptions, renderer, context))
    for engine, _ in stores.values():
        engine.dispose()
    return figures


def _next_hour(
    engine: Engine,
    settings: Settings,
    subscriptions: Subscriptions,
    renderer: EmailRenderer,
    context: Context,
) -> Figures:
    """The pass an hour after the day's digests, when a collection brought five items:
    what ``publisher run`` does after each collection and at each zone's send time."""
    plan(engine, subscriptions, renderer=renderer, settings=settings, now=NOW)
    fetched = synthetic.items(
        subscriptions.taxonomy, per_day=5, days=1, end=NOW + DAY / 48, key_prefix="later"
    )
    with engine.begin() as conn:
        save_items(conn, "synthetic", fetched, now=NOW + DAY / 48)
        assign_entry_ids(conn, settings.entry_id_prefix)
    start = time.perf_counter()
    report = plan(
        engine,
        subscriptions,
        renderer=renderer,
        settings=settings,
        now=NOW + DAY / 24,
        processes=context.plan_processes,
    )
    return {
        "history_next_hour_plan_s": round(time.perf_counter() - start, 2),
        "history_next_hour_messages": report.alerts + report.digests,
    }


def _fill(
    engine: Engine,
    settings: Settings,
    subscriptions: Subscriptions,
    renderer: EmailRenderer,
    per_day: int,
    days: int,
) -> int:
    """``days`` days of items, each recorded as sent to every address it matches within
    the store's memory, then today's; returns how many records the store holds."""
    # The addresses came before all of it: none of it is their back catalogue.
    first = NOW - (days + 2) * DAY
    plan(engine, subscriptions, renderer=renderer, settings=settings, now=first)
    for day in range(days, -1, -1):  # the oldest first; day 0 is today's
        collected = NOW - day * DAY - timedelta(hours=2)
        fetched = synthetic.items(
            subscriptions.taxonomy, per_day=per_day, days=1, end=collected, seed=day
        )
        with engine.begin() as conn:
            save_items(conn, "synthetic", fetched, now=collected)
        if day == 1:  # the history is in: record it as sent, before today's items come
            _record_sent(engine, subscriptions, settings)
    with engine.begin() as conn:
        assign_entry_ids(conn, settings.entry_id_prefix)
        return int(conn.execute(select(func.count()).select_from(sent_items)).scalar_one())


def _record_sent(engine: Engine, subscriptions: Subscriptions, settings: Settings) -> None:
    """Every stored item as sent to each address it matches, but only as far back as the
    store remembers: what pruning would have left."""
    with engine.begin() as conn:
        remembered = load_items(conn, seen_since=look_back(settings, NOW))
        rows = [
            (subscriber.email.lower(), matched.item.id)
            for group in match(
                subscriptions,
                ItemIndex.build(remembered),
                default_locale=settings.default_locale,
            )
            for subscriber in group.subscribers
            for matched in group.items
        ]
        conn.exec_driver_sql(_INSERT, rows)
