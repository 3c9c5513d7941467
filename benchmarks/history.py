"""A newsroom that has run for weeks: does a planning pass stay as fast as on day one?

Each simulated day stores the day's items, runs one planning pass at 22:00 UTC (when
every daily digest of the day has come due; alerts and weekly digests as they fall),
records every queued message as sent, then prunes the outbox as ``publisher run`` does.
It runs twice on fresh stores: with the outbox remembering 30 days (the default
``outbox.keep``), and with it remembering ten years, which reads everything ever
stored as every pass did before the window existed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import synthetic
from harness import Context, Figures
from sqlalchemy import func, select, update

from publisher.delivery.planning import look_back, plan
from publisher.rendering.emails import EmailRenderer
from publisher.store.database import open_store
from publisher.store.items import assign_entry_ids, save_items
from publisher.store.outbox import prune
from publisher.store.schema import outbox, sent_items
from publisher.subscriptions import load_subscriptions

FIRST_PASS = datetime(2025, 3, 3, 22, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
KEEPS = {"30d": "window", "3650d": "unbounded"}


def measure_history(context: Context) -> Figures:
    """Plan seconds on the first and the last day, with and without the window."""
    directory = context.directory / "history"
    directory.mkdir()
    path = synthetic.write_subscriptions(directory, context.history_subscribers)
    subscriptions = load_subscriptions(path, taxonomy=context.taxonomy, locales=synthetic.LOCALES)
    figures: Figures = {
        "history_subscribers": context.history_subscribers,
        "history_days": context.history_days,
    }
    for keep, label in KEEPS.items():
        settings = context.settings(
            database_url=f"sqlite:///{directory / f'{label}.db'}", outbox={"keep": keep}
        )
        engine = open_store(settings.database_url)
        renderer = EmailRenderer(
            taxonomy=subscriptions.taxonomy, base_url=settings.base_url, organisation="OSCE News"
        )
        plan(engine, subscriptions, renderer=renderer, settings=settings, now=FIRST_PASS - 2 * DAY)
        plan_seconds: list[float] = []
        prune_seconds: list[float] = []
        for day in range(context.history_days):
            now = FIRST_PASS + day * DAY
            fetched = synthetic.items(
                subscriptions.taxonomy,
                per_day=context.items_per_day,
                days=1,
                end=now - timedelta(hours=2),
                seed=day,
            )
            with engine.begin() as conn:
                save_items(conn, "synthetic", fetched, now=now - timedelta(hours=2))
                assign_entry_ids(conn, settings.entry_id_prefix)
            start = time.perf_counter()
            plan(
                engine,
                subscriptions,
                renderer=renderer,
                settings=settings,
                now=now,
                processes=context.plan_processes,
            )
            plan_seconds.append(time.perf_counter() - start)
            with engine.begin() as conn:  # every message went out at once
                conn.execute(
                    update(outbox)
                    .where(outbox.c.status == "queued")
                    .values(status="sent", finished_at=now)
                )
            start = time.perf_counter()
            prune(engine, before=look_back(settings, now))
            prune_seconds.append(time.perf_counter() - start)
        with engine.connect() as conn:
            remembered = conn.execute(select(func.count()).select_from(sent_items)).scalar()
        engine.dispose()
        # A pass's mean time in each week (the last one may be shorter).
        for week in range(0, len(plan_seconds), 7):
            days = plan_seconds[week : week + 7]
            figures[f"history_{label}_plan_s_week{week // 7 + 1}"] = round(sum(days) / len(days), 2)
        figures[f"history_{label}_prune_s_max"] = round(max(prune_seconds), 2)
        figures[f"history_{label}_sent_items_rows"] = int(remembered or 0)
        figures[f"history_{label}_db_mb"] = round(
            (directory / f"{label}.db").stat().st_size / 1e6, 1
        )
    return figures
