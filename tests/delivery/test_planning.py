from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from publisher.collect import collect
from publisher.delivery import _bodies, planning
from publisher.delivery.planning import PlanReport, last_send_time, look_back, plan
from publisher.rendering.emails import EmailRenderer
from publisher.settings import Settings, load_settings
from publisher.store.database import open_store
from publisher.store.outbox import already_sent, prune
from publisher.store.schema import bodies, outbox, sent_items
from publisher.subscriptions import Subscriptions, parse_subscriptions
from publisher.subscriptions.model import Format, Frequency, Rule
from publisher.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parents[2]
NINE = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]


def _rule(
    frequency: Frequency, send_at: str = "08:00", zone: str = "Europe/Vienna", weekday: int = 0
) -> Rule:
    return Rule(
        frozenset(),
        frozenset(),
        (),
        frozenset(),
        frozenset(),
        "en",
        (),
        zone,
        frequency,
        time.fromisoformat(send_at),
        weekday,
        Format.HTML,
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Winter (UTC+1): 08:00 in Vienna is 07:00 UTC.
        (datetime(2025, 1, 15, 7, 0, tzinfo=UTC), datetime(2025, 1, 15, 7, 0, tzinfo=UTC)),
        (datetime(2025, 1, 15, 6, 59, tzinfo=UTC), datetime(2025, 1, 14, 7, 0, tzinfo=UTC)),
        # The day clocks go forward (30 March 2025) 08:00 is already 06:00 UTC.
        (datetime(2025, 3, 30, 6, 30, tzinfo=UTC), datetime(2025, 3, 30, 6, 0, tzinfo=UTC)),
        (datetime(2025, 3, 30, 5, 59, tzinfo=UTC), datetime(2025, 3, 29, 7, 0, tzinfo=UTC)),
        # The day they go back (26 October 2025): 08:00 is 07:00 UTC again.
        (datetime(2025, 10, 26, 7, 0, tzinfo=UTC), datetime(2025, 10, 26, 7, 0, tzinfo=UTC)),
    ],
)
def test_daily_send_time_follows_the_local_clock_across_dst(
    now: datetime, expected: datetime
) -> None:
    """A daily 08:00 Vienna digest is due at 08:00 local time, whatever the UTC offset."""
    assert last_send_time(_rule(Frequency.DAILY), now) == expected


def test_weekly_send_time_and_alerts() -> None:
    """Weekly digests fall on their weekday; immediate rules have no send time."""
    friday = _rule(Frequency.WEEKLY, "17:30", "Asia/Tashkent", weekday=4)
    wednesday = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    assert last_send_time(friday, wednesday) == datetime(2025, 1, 10, 12, 30, tzinfo=UTC)
    assert last_send_time(_rule(Frequency.IMMEDIATE), wednesday) is None


SUBSCRIPTIONS = """\
defaults:
  timezone: Asia/Tashkent
  send_at: "09:00"
subscribers:
  - email: analyst@example.org
    locale: ru
    fallback_locales: [en]
    fields_of_work: [policing]
    countries: [central-asia]
    frequency: immediate
  - email: desk@example.org
    fields_of_work: [elections, policing]
    frequency: daily
"""


def _subscriptions(text: str) -> Subscriptions:
    return parse_subscriptions(
        text, path="subscriptions.yaml", taxonomy=load_taxonomy(), locales=NINE
    )


def _settings(tmp_path: Path, engine: Engine) -> Settings:
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    path = tmp_path / "publisher.toml"
    path.write_text(
        f'database_url = "{engine.url.render_as_string(hide_password=False)}"\n'
        '[sender]\nfrom = "OSCE News <news@example.org>"\n'
        f'[[sources]]\nname = "newsroom"\nkind = "folder"\npath = "{content}"\n'
    )
    return load_settings(path, environ={})


def _plan(
    engine: Engine,
    settings: Settings,
    subscriptions: Subscriptions,
    now: datetime,
    *,
    dry_run: bool = False,
    processes: int | None = None,
) -> PlanReport:
    renderer = EmailRenderer(
        taxonomy=load_taxonomy(), base_url=settings.base_url, organisation="OSCE News"
    )
    return plan(
        engine,
        subscriptions,
        renderer=renderer,
        settings=settings,
        now=now,
        dry_run=dry_run,
        processes=processes,
    )


def test_alerts_and_digests_are_queued_once_and_never_empty(tmp_path: Path, engine: Engine) -> None:
    """Alerts per new item, one digest per period, nothing twice, no back catalogue."""
    settings = _settings(tmp_path, engine)
    subscriptions = _subscriptions(SUBSCRIPTIONS)
    t0 = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)  # 08:00 in Tashkent: before the digest
    assert _plan(engine, settings, subscriptions, t0) == PlanReport(new_subscribers=2)
    asyncio.run(collect(settings, engine, taxonomy=load_taxonomy(), clock=lambda: t0))

    dry = _plan(engine, settings, subscriptions, t0, dry_run=True)
    assert dry.alerts > 0
    first = _plan(engine, settings, subscriptions, t0)
    assert first == dry
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.recipient, outbox.c.dedupe_key)).all()
    alerts = {key for who, key in rows if who == "analyst@example.org"}
    assert "alert:2024-12-06-tashkent-workshop" in alerts
    assert all(key.startswith("alert:") for key in alerts)
    assert not [key for who, key in rows if who == "desk@example.org"]  # 09:00 not reached

    t1 = t0 + timedelta(hours=1)  # 09:00 in Tashkent: the daily digest is due
    second = _plan(engine, settings, subscriptions, t1)
    assert second == PlanReport(digests=1)
    assert _plan(engine, settings, subscriptions, t1 + timedelta(minutes=5)) == PlanReport()
    # The next day has nothing new: no digest at all.
    assert _plan(engine, settings, subscriptions, t1 + timedelta(days=1)) == PlanReport()

    # An address added now is not sent the back catalogue.
    later = _subscriptions(
        SUBSCRIPTIONS + "  - email: late@example.org\n    frequency: immediate\n"
    )
    assert _plan(engine, settings, later, t1 + timedelta(days=1)) == PlanReport(new_subscribers=1)


def test_a_digest_queued_for_its_period_is_not_rendered_again(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass after the day's digest (another zone's, or after a collection) renders
    no digest for that period again, although an item came since: only the alert."""
    settings = _settings(tmp_path, engine)
    subscriptions = _subscriptions(SUBSCRIPTIONS)
    t0 = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)
    _plan(engine, settings, subscriptions, t0)
    asyncio.run(collect(settings, engine, taxonomy=load_taxonomy(), clock=lambda: t0))
    t1 = t0 + timedelta(hours=1)  # 09:00 in Tashkent: the daily digest
    assert _plan(engine, settings, subscriptions, t1).digests == 1
    content = tmp_path / "content"
    text = (content / "2024-11-12-moldova-domestic-observers.en.md").read_text("utf-8")
    fields = "fields_of_work: [elections, democratization]"
    (content / "2025-03-03-a-later-item.en.md").write_text(
        text.replace(fields, "fields_of_work: [policing, elections]"), "utf-8"
    )
    asyncio.run(collect(settings, engine, taxonomy=load_taxonomy(), clock=lambda: t1))
    rendered: list[_bodies.BodyJob] = []
    make = _bodies.BodyMaker.__call__

    def counting(maker: _bodies.BodyMaker, job: _bodies.BodyJob) -> _bodies.Made:
        rendered.append(job)
        return make(maker, job)

    monkeypatch.setattr(_bodies.BodyMaker, "__call__", counting)
    later = _plan(engine, settings, subscriptions, t1 + timedelta(hours=5), processes=1)
    assert later == PlanReport()  # the analyst follows Central Asia: no alert for Moldova
    assert rendered == []
    # The next day's digest holds it.
    assert _plan(engine, settings, subscriptions, t1 + timedelta(days=1)).digests == 1
    with engine.connect() as conn:
        last = conn.execute(select(outbox.c.item_ids).order_by(outbox.c.id.desc())).scalar()
    assert last == ["2025-03-03-a-later-item"]


def test_a_pass_mails_nothing_older_than_the_outbox_remembers(
    tmp_path: Path, engine: Engine
) -> None:
    """Items collected more than `[outbox] keep` (30 days) ago go to no one: not in a late
    digest, and not again once pruning has forgotten that they were sent."""
    settings = _settings(tmp_path, engine)
    subscriptions = _subscriptions(SUBSCRIPTIONS)
    t0 = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)  # 08:00 in Tashkent
    _plan(engine, settings, subscriptions, t0)
    asyncio.run(collect(settings, engine, taxonomy=load_taxonomy(), clock=lambda: t0))
    alerts = _plan(engine, settings, subscriptions, t0).alerts
    assert alerts > 0
    with engine.begin() as conn:  # the alerts went out at once
        conn.execute(update(outbox).values(status="sent", finished_at=t0))

    # The daily subscriber's digest was never sent (the service was down for weeks).
    # Within 30 days of the collection it holds the items; after, nothing is due.
    late = t0 + timedelta(days=29, hours=1)
    assert _plan(engine, settings, subscriptions, late, dry_run=True) == PlanReport(digests=1)
    too_late = t0 + timedelta(days=30, hours=1)
    assert look_back(settings, too_late) > t0
    assert _plan(engine, settings, subscriptions, too_late) == PlanReport()

    # Pruning forgets the alerts and the items they carried; no item goes again.
    pruned = prune(engine, before=look_back(settings, too_late))
    assert (pruned.messages, pruned.bodies) == (alerts, alerts)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sent_items)).scalar() == 0
        assert already_sent(conn, ["analyst@example.org"]) == {"analyst@example.org": set()}
    assert _plan(engine, settings, subscriptions, too_late + timedelta(hours=1)) == PlanReport()


def test_bodies_rendered_in_worker_processes_are_the_ones_rendered_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass spread over worker processes queues the same rows with the same bytes."""
    monkeypatch.setattr(_bodies, "PARALLEL_FROM", 1)
    entries = "".join(
        f"  - email: reader{n}@example.org\n    locale: {locale}\n"
        f"    timezone: {zone}\n    frequency: {frequency}\n"
        for n, (locale, zone, frequency) in enumerate(
            (locale, zone, frequency)
            for locale in NINE
            for zone in ("Asia/Tashkent", "Europe/Vienna")
            for frequency in ("daily", "immediate")
        )
    )
    subscriptions = _subscriptions("subscribers:\n" + entries)
    t0 = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)
    t1 = t0 + timedelta(days=1)
    queued = []
    for processes in (1, 2):
        engine = open_store(f"sqlite:///{tmp_path / f'{processes}.db'}")
        settings = _settings(tmp_path / str(processes), engine)
        _plan(engine, settings, subscriptions, t0)
        asyncio.run(collect(settings, engine, taxonomy=load_taxonomy(), clock=lambda: t0))
        report = _plan(engine, settings, subscriptions, t1, processes=processes)
        assert report.alerts > 0 and report.digests > 0
        with engine.connect() as conn:
            queued.append(
                conn.execute(
                    select(
                        outbox.c.recipient,
                        outbox.c.dedupe_key,
                        outbox.c.message_id,
                        bodies.c.content,
                    )
                    .join(bodies, bodies.c.id == outbox.c.body_id)
                    .order_by(outbox.c.recipient, outbox.c.dedupe_key)
                ).all()
            )
        engine.dispose()
    assert queued[0] == queued[1]


def test_a_pass_cut_short_keeps_whole_messages_and_the_next_one_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are committed in batches: what a failed pass committed stays, each row with
    its items, and the next pass queues the rest, nothing twice."""
    entries = "".join(
        f"  - email: reader{n}@example.org\n    locale: {locale}\n    frequency: daily\n"
        for n, locale in enumerate(NINE * 2)
    )
    subscriptions = _subscriptions("subscribers:\n" + entries)
    t0 = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)
    t1 = t0 + timedelta(days=1)
    engine = open_store(f"sqlite:///{tmp_path / 'publisher.db'}")
    settings = _settings(tmp_path, engine)
    _plan(engine, settings, subscriptions, t0)
    asyncio.run(collect(settings, engine, taxonomy=load_taxonomy(), clock=lambda: t0))
    monkeypatch.setattr(planning, "BATCH_ROWS", 2)
    calls = {"n": 0}
    make = _bodies.BodyMaker.__call__

    def failing(maker: _bodies.BodyMaker, job: _bodies.BodyJob) -> _bodies.Made:
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("the renderer broke")
        return make(maker, job)

    monkeypatch.setattr(_bodies.BodyMaker, "__call__", failing)
    with pytest.raises(RuntimeError, match="the renderer broke"):
        _plan(engine, settings, subscriptions, t1, processes=1)
    with engine.connect() as conn:
        kept = conn.execute(select(outbox.c.recipient_key, outbox.c.item_ids)).all()
        remembered = already_sent(conn, [key for key, _ in kept])
    assert 0 < len(kept) < 18
    assert all(remembered[key] == set(ids) for key, ids in kept)

    monkeypatch.setattr(_bodies.BodyMaker, "__call__", make)
    rest = _plan(engine, settings, subscriptions, t1, processes=1)
    assert rest.digests == 18 - len(kept)
    assert _plan(engine, settings, subscriptions, t1, processes=1) == PlanReport()
    engine.dispose()
