"""``publisher explain ITEM_ID``: who gets an item, when and in which language, and who not.

The store is filled by the real collector and planner with the clock pinned, so that
every send time below is known in advance.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from publisher.admin import next_send_time
from publisher.cli._context import Context
from publisher.collect import collect
from publisher.delivery.planning import last_send_time, plan, register_subscribers
from publisher.store.suppressions import suppress
from publisher.subscriptions.model import Format, Frequency, Rule
from tests.cli import test_status as base

clean_environment, offline, Deployment = base.clean_environment, base.offline, base.Deployment

TASHKENT = "2024-12-06-tashkent-workshop"  # policing; KZ KG TJ TM UZ; en and ru
SERBIA = "2025-02-20-serbia-community-policing-prevention"  # policing; RS; en only
ELECTIONS = "2024-11-12-moldova-domestic-observers"  # elections; MD; en and ru
SUBSCRIPTIONS = """\
defaults:
  timezone: UTC
subscribers:
  - email: analyst@example.org
    locale: ru
    fallback_locales: [en]
    timezone: Asia/Tashkent
    fields_of_work: [policing]
    frequency: immediate
  - email: digest@example.org
    locale: de
    fallback_locales: [en]
    timezone: Asia/Tashkent
    fields_of_work: [policing]
    frequency: daily
    send_at: "04:30"
  - email: weekly@example.org
    locale: fr
    timezone: America/New_York
    fields_of_work: [policing]
    frequency: weekly
    weekday: friday
    send_at: "16:00"
  - email: late@example.org
    fields_of_work: [policing]
    frequency: immediate
  - email: gone@example.org
    fields_of_work: [policing]
    frequency: immediate
  - email: elections@example.org
    fields_of_work: [elections]
  - email: elsewhere@example.org
    fields_of_work: [policing]
    exclude_countries: [central-asia]
    frequency: immediate
"""
JOINED = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)  # a Sunday
COLLECTED = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)  # everything but the Tashkent item
# After Monday's 04:30 in Tashkent (Sunday 23:30 UTC): digest@'s digest of Monday is queued.
PLANNED = datetime(2025, 3, 3, 5, 0, tzinfo=UTC)
TASHKENT_COLLECTED = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
LATE_JOINED = datetime(2025, 3, 3, 6, 30, tzinfo=UTC)
AT = "2025-03-03T07:00:00+00:00"


@pytest.fixture
def store(tmp_path: Path, store_url: str, clean_environment: None) -> Deployment:
    """The sample collected and planned on a pinned clock, the Tashkent item collected after
    the day's digests were queued, late@ joined after it, gone@ unsubscribed."""
    deployment = base.make_deployment(
        tmp_path, database_url=store_url, smtp_port=9, items=(TASHKENT, SERBIA, ELECTIONS)
    )
    (tmp_path / "subscriptions.yaml").write_text(SUBSCRIPTIONS, encoding="utf-8")
    held_back = tmp_path / "later"
    held_back.mkdir()
    for path in (tmp_path / "content").glob(f"{TASHKENT}.*"):
        shutil.move(path, held_back / path.name)
    ctx = Context(config_path=Path(deployment.config))
    everyone = ctx.subscriptions
    early = replace(
        everyone,
        subscribers=tuple(s for s in everyone.subscribers if s.email != "late@example.org"),
    )
    engine = ctx.engine
    try:
        with engine.begin() as conn:
            register_subscribers(conn, early, now=JOINED)
        asyncio.run(collect(ctx.settings, engine, taxonomy=ctx.taxonomy, clock=lambda: COLLECTED))
        plan(engine, early, renderer=ctx.renderer, settings=ctx.settings, now=PLANNED)
        for path in held_back.iterdir():
            shutil.move(path, tmp_path / "content" / path.name)
        asyncio.run(
            collect(ctx.settings, engine, taxonomy=ctx.taxonomy, clock=lambda: TASHKENT_COLLECTED)
        )
        with engine.begin() as conn:
            register_subscribers(conn, everyone, now=LATE_JOINED)
            suppress(
                conn,
                "gone@example.org",
                reason="unsubscribed",
                now=LATE_JOINED,
                source="one-click",
            )
    finally:
        engine.dispose()
    return deployment


def _recipients(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        recipient["email"]: {
            **recipient,
            "language": rule["language"],
            "fallback": rule["is_fallback"],
        }
        for rule in report["receiving"]
        for recipient in rule["recipients"]
    }


def test_explain_names_subscribers_languages_and_send_times(store: Deployment) -> None:
    """Each matching subscriber's language, state and send time (local and UTC) as of --at."""
    code, report = store.json("explain", TASHKENT, "--at", AT)
    assert code == 0
    assert report["item"]["id"] == TASHKENT and report["item"]["languages"] == ["en", "ru"]
    assert report["at"] == AT
    got = _recipients(report)
    assert set(got) == {
        "analyst@example.org",
        "digest@example.org",
        "weekly@example.org",
        "late@example.org",
        "gone@example.org",
    }
    analyst = got["analyst@example.org"]
    assert (analyst["language"], analyst["fallback"], analyst["state"]) == ("ru", False, "due")
    assert analyst["send_at"] is None
    # Monday's digest was queued without this item: it goes with Tuesday's, whose 04:30 in
    # Tashkent is still Monday in UTC.
    digest = got["digest@example.org"]
    assert (digest["language"], digest["fallback"], digest["state"]) == ("en", True, "scheduled")
    assert digest["send_at"] == "2025-03-03T23:30:00+00:00"
    assert digest["send_at_local"] == "2025-03-04T04:30:00+05:00"
    # Joined after last Friday's digest: the first one is this Friday, 16:00 in New York.
    weekly = got["weekly@example.org"]
    assert (weekly["language"], weekly["fallback"], weekly["state"]) == ("en", True, "scheduled")
    assert weekly["send_at"] == "2025-03-07T21:00:00+00:00"
    assert weekly["send_at_local"] == "2025-03-07T16:00:00-05:00"
    assert got["late@example.org"]["state"] == "back-catalogue"
    assert got["late@example.org"]["joined_at"] == LATE_JOINED.isoformat()
    assert got["gone@example.org"]["state"] == "suppressed"
    assert got["gone@example.org"]["suppression"]["reason"] == "unsubscribed"
    out = {r["subscribers"][0]: r for r in report["not_receiving"]}
    assert set(out) == {"elections@example.org", "elsewhere@example.org"}
    assert out["elections@example.org"]["verdict"] == "no-field-in-common"
    assert out["elsewhere@example.org"]["verdict"] == "excluded-country"
    assert out["elsewhere@example.org"]["excluded_countries"] == ["KG", "KZ", "TJ", "TM", "UZ"]

    # Once Tuesday's 04:30 has come in Tashkent and nothing was queued for it: due now.
    code, report = store.json("explain", TASHKENT, "--at", "2025-03-04T00:00:00")
    assert code == 0
    digest = _recipients(report)["digest@example.org"]
    assert (digest["state"], digest["send_at"]) == ("due", "2025-03-03T23:30:00+00:00")


def test_explain_shows_what_is_already_in_the_outbox(store: Deployment) -> None:
    """An item already queued to a subscriber says so; a suppressed one's row will be skipped."""
    code, report = store.json("explain", SERBIA, "--at", AT)
    assert code == 0
    got = _recipients(report)
    assert got["analyst@example.org"]["state"] == "queued"
    assert got["analyst@example.org"]["outbox"]["status"] == "queued"
    assert got["digest@example.org"]["state"] == "queued"
    assert got["digest@example.org"]["language"] == "en"
    assert got["elsewhere@example.org"]["state"] == "queued"  # RS is not Central Asia
    assert got["gone@example.org"]["state"] == "suppressed"
    assert got["gone@example.org"]["outbox"]["status"] == "queued"
    assert got["late@example.org"]["state"] == "back-catalogue"
    assert got["weekly@example.org"]["send_at"] == "2025-03-07T21:00:00+00:00"


def test_explain_prints_a_table_and_the_rules_left_out(store: Deployment) -> None:
    """The human output names each subscriber's time in their zone and in UTC, and why not."""
    result = store.invoke("explain", TASHKENT, "--at", AT)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Who gets it: 5 subscriber(s), 4 rule(s)" in text
    assert "2025-03-04 04:30 Asia/Tashkent (2025-03-03 23:30 UTC)" in text
    assert "2025-03-07 16:00 America/New_York (21:00 UTC)" in text
    assert "with the next send pass" in text
    assert "en (fallback)" in text
    assert "held back: unsubscribed (by one-click" in text
    assert "elections@example.org: no-field-in-common (follows elections)" in text
    assert "elsewhere@example.org: excluded-country (excludes KG, KZ, TJ, TM, UZ)" in text


def test_explain_an_unknown_item_suggests_close_ids(offline: Deployment) -> None:
    """An id not in the store exits 1 and names the ids it may have meant."""
    assert offline.invoke("collect").exit_code == 0
    result = offline.invoke("explain", "2025-02-06-cyber-incident-tabletop-exercise")
    assert result.exit_code == 1
    assert "no item '2025-02-06-cyber-incident-tabletop-exercise' in the store" in result.output
    assert f"did you mean '{base.CYBER_ITEM}'?" in result.output
    assert offline.invoke("explain", base.CYBER_ITEM).exit_code == 0


@pytest.mark.parametrize(
    ("frequency", "zone"),
    [(Frequency.DAILY, "Europe/Vienna"), (Frequency.WEEKLY, "America/New_York")],
)
def test_next_send_time_agrees_with_the_planner_across_daylight_saving(
    frequency: Frequency, zone: str
) -> None:
    """The next send time is the planner's next period end, also on days of 23 or 25 hours."""
    rule = Rule(
        fields_of_work=frozenset(),
        countries=frozenset(),
        countries_as_written=(),
        exclude_fields_of_work=frozenset(),
        exclude_countries=frozenset(),
        locale="en",
        fallback_locales=(),
        timezone=zone,
        frequency=frequency,
        send_at=time(2, 30),  # inside the spring gap in both zones
        weekday=6,
        format=Format.HTML,
    )
    moment = datetime(2025, 3, 1, tzinfo=UTC)
    while moment < datetime(2025, 4, 10, tzinfo=UTC):  # Europe and America change in March
        following = next_send_time(rule, moment)
        assert following is not None and following > moment
        assert last_send_time(rule, following) == following
        assert last_send_time(rule, following - timedelta(microseconds=1)) <= moment
        moment += timedelta(hours=5, minutes=17)
