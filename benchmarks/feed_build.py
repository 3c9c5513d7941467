"""The static feeds: a full build of every standard feed, and the rebuild after one new item.

Every feed is 9 locales x (all, one per field of work, one per country) x (Atom, RSS,
JSON Feed), plus an OPML file per locale, into an empty folder (``build_static``). The
store holds ``--feed-days`` days of ``--items`` a day, enough that nearly every feed has
its 50 entries (the table says how many do).

Then one new item is collected (a Markdown file in a folder source, through
``publisher.collect.collect``) and the feeds are built again: with the FeedBuilder of the
full build, as ``publisher run`` does after each collection (its entry cache is warm),
and with a new one, as ``publisher feeds build`` does (cold). Each is the best of
``--repeat``, each repeat with one more new item. The process's peak memory over these
builds is reported too (``feeds_peak_rss_mb``): a builder keeps the entries it wrote.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import synthetic
from harness import SETTINGS, Context, Figures, peak_rss, timed
from sqlalchemy import Engine

from publisher.collect import collect
from publisher.feeds.build import FeedBuilder
from publisher.feeds.spec import standard_specs
from publisher.feeds.static import build_static
from publisher.settings import Settings
from publisher.store.database import open_store
from publisher.store.items import assign_entry_ids, save_items

END = datetime(2025, 3, 4, 21, 0, tzinfo=UTC)  # the newest synthetic item, at most

NEW_ITEM = """\
---
title: "Domestic observer groups review lessons from the election cycle ({number})"
published: {published}
issuer: mission-to-moldova
fields_of_work: [elections, democratization]
countries: [MD]
summary: "Representatives of domestic observer organizations met at a workshop supported \
by the Mission to compare findings from the autumn election cycle and plan their \
follow-up work."
---

Some 30 representatives of domestic observer organizations met on 11 and 12 November for
a workshop supported by the Mission.

Participants compared the methods they used to collect and verify reports from polling
stations, and identified recommendations they intend to raise with the electoral
administration in the coming months.
"""


def measure_feeds(context: Context) -> Figures:
    directory = context.directory / "feeds"
    folder = directory / "newsroom"
    folder.mkdir(parents=True)
    settings = context.settings(
        database_url=f"sqlite:///{directory / 'publisher.db'}",
        sources=[{"name": "newsroom", "kind": "folder", "path": str(folder)}],
        feeds={**SETTINGS["feeds"], "out_dir": str(directory / "out")},
    )
    engine = open_store(settings.database_url)
    fetched = synthetic.items(
        context.taxonomy,
        per_day=context.items_per_day,
        days=context.feed_days,
        end=END,
        key_prefix="feed",
    )
    with engine.begin() as conn:
        save_items(conn, "synthetic", fetched, now=END)
        assign_entry_ids(conn, settings.entry_id_prefix)
    specs = list(standard_specs(context.taxonomy))
    with engine.connect() as conn:
        builder = FeedBuilder(settings, taxonomy=context.taxonomy)
        full = sum(len(builder.select(conn, spec).ids) == settings.feeds.entries for spec in specs)

    builds = []
    warm: list[float] = []
    cold: list[float] = []
    collecting = []
    memory: dict[str, float] = {}
    with peak_rss(memory):
        for attempt in range(context.repeat):
            builder = FeedBuilder(settings, taxonomy=context.taxonomy)  # as a new process has
            out = directory / f"out-{attempt}"
            with timed(context, "feeds_full") as building:
                report = build_static(builder, engine, out)
            builds.append(building.seconds)
        written = len(report.written)
        size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())

        for number in range(2 * context.repeat):
            kind, times = ("warm", warm) if number % 2 == 0 else ("cold", cold)
            collecting.append(_collect_one(context, settings, engine, folder, number))
            if kind == "cold":
                builder = FeedBuilder(settings, taxonomy=context.taxonomy)
            with timed(context, f"feeds_incremental_{kind}") as rebuilding:
                incremental = build_static(builder, engine, out)
            times.append(rebuilding.seconds)
            if not incremental.changed_feeds:
                raise RuntimeError("a new item changed no feed")
    engine.dispose()
    figures: Figures = {
        "feeds_items": len(fetched),
        "feeds_standard_specs": len(specs),
        "feeds_with_all_entries": full,
        "feeds_files": written,
        "feeds_mb": round(size / 1e6, 1),
        "feeds_full_build_s": round(min(builds), 2),
        "collect_one_item_s": round(min(collecting), 3),
        "feeds_incremental_files": len(incremental.written),
        "feeds_incremental_s": round(min(warm), 3),
        "feeds_incremental_cold_s": round(min(cold), 3),
    }
    if "peak_mb" in memory:  # where the kernel lets the peak be reset
        figures["feeds_peak_rss_mb"] = round(memory["peak_mb"], 1)
    return figures


def _collect_one(
    context: Context, settings: Settings, engine: Engine, folder: Path, number: int
) -> float:
    """Add one new item to the folder source and collect it; the seconds it took."""
    published = END + timedelta(minutes=10 * (number + 1))
    (folder / f"{published:%Y-%m-%d}-observers-{number}.en.md").write_text(
        NEW_ITEM.format(number=number, published=published.isoformat()), encoding="utf-8"
    )
    start = time.perf_counter()
    reports = asyncio.run(collect(settings, engine, taxonomy=context.taxonomy))
    seconds = time.perf_counter() - start
    if [r.new for r in reports] != [1] or not reports[0].ok:
        raise RuntimeError(f"collecting one new item: {reports}")
    return seconds
