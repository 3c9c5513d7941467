"""The job table `publisher run` registers, read without running anything."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from publisher.delivery.planning import last_send_time
from publisher.scheduling import DigestTime, JobKind, job_table
from publisher.settings import Settings
from publisher.subscriptions import Frequency, Subscriptions, parse_subscriptions
from publisher.taxonomy import load_taxonomy

NINE = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]
VIENNA = ZoneInfo("Europe/Vienna")
SUBSCRIPTIONS = """\
defaults:
  timezone: Europe/Vienna
  send_at: "08:00"
subscribers:
  - email: alerts@example.org
    frequency: immediate
  - email: a@example.org
    frequency: daily
  - email: b@example.org
    frequency: daily
    locale: fr
  - email: c@example.org
    frequency: daily
    timezone: Asia/Tashkent
    send_at: "09:00"
  - email: d@example.org
    frequency: weekly
    weekday: friday
    send_at: "17:30"
  - email: e@example.org
    frequency: weekly
    weekday: monday
    send_at: "17:30"
"""


def _subscriptions(text: str) -> Subscriptions:
    return parse_subscriptions(
        text, path="subscriptions.yaml", taxonomy=load_taxonomy(), locales=NINE
    )


def _settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "sources": [
                {"name": "newsroom", "kind": "folder", "path": tmp_path, "interval": "15m"},
                {
                    "name": "wire",
                    "kind": "feed",
                    "url": "https://example.org/feed",
                    "interval": "1h",
                },
                {"name": "old", "kind": "folder", "path": tmp_path, "enabled": False},
            ]
        }
    )


def test_job_table_has_one_job_per_source_per_digest_time_and_a_retry_job(tmp_path: Path) -> None:
    """Enabled sources at their interval, one cron job per distinct digest time, retries,
    the file watch and pruning."""
    jobs = {job.id: job for job in job_table(_settings(tmp_path), _subscriptions(SUBSCRIPTIONS))}
    assert sorted(jobs) == [
        "collect:newsroom",
        "collect:wire",
        "digest:daily:Asia/Tashkent:09:00",
        "digest:daily:Europe/Vienna:08:00",
        "digest:weekly:fri:Europe/Vienna:17:30",
        "digest:weekly:mon:Europe/Vienna:17:30",
        "prune",
        "reload",
        "retry",
    ]
    newsroom, wire = jobs["collect:newsroom"], jobs["collect:wire"]
    assert (newsroom.kind, newsroom.source) == (JobKind.COLLECT, "newsroom")
    assert isinstance(newsroom.trigger, IntervalTrigger)
    assert newsroom.trigger.interval == timedelta(minutes=15)
    assert wire.trigger.interval == timedelta(hours=1)
    retry = jobs["retry"]
    assert retry.kind is JobKind.RETRY and retry.trigger.interval == timedelta(minutes=1)
    reload = jobs["reload"]
    assert reload.kind is JobKind.RELOAD and reload.trigger.interval == timedelta(seconds=5)
    prune = jobs["prune"]
    assert prune.kind is JobKind.PRUNE and prune.trigger.interval == timedelta(hours=1)

    tashkent = jobs["digest:daily:Asia/Tashkent:09:00"]
    assert tashkent.kind is JobKind.DIGEST
    assert isinstance(tashkent.trigger, CronTrigger)
    assert tashkent.trigger.timezone == ZoneInfo("Asia/Tashkent")
    fields = {f.name: str(f) for f in tashkent.trigger.fields}
    assert (fields["hour"], fields["minute"], fields["day_of_week"]) == ("9", "0", "*")
    friday = jobs["digest:weekly:fri:Europe/Vienna:17:30"].trigger
    fields = {f.name: str(f) for f in friday.fields}
    assert (fields["hour"], fields["minute"], fields["day_of_week"]) == ("17", "30", "fri")
    assert friday.timezone == VIENNA
    # Fires on Friday 17:30 Vienna time, whatever day it is asked on.
    wednesday = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    assert friday.get_next_fire_time(None, wednesday) == datetime(
        2025, 1, 17, 17, 30, tzinfo=VIENNA
    )


def test_rules_sharing_a_digest_time_share_one_job() -> None:
    """Two daily rules at 08:00 Vienna differing in language are one job; alerts have none."""
    rules = _subscriptions(SUBSCRIPTIONS).rules()
    times = {DigestTime.of(rule) for rule in rules}
    assert None in times  # the immediate rule
    assert DigestTime("Europe/Vienna", time(8), Frequency.DAILY, None) in times
    assert len(rules) == 6 and len(times - {None}) == 4


def test_empty_subscriptions_and_no_sources_leave_the_retry_and_reload_jobs() -> None:
    """With nothing to collect and nobody subscribed, retries, the file watch and pruning
    remain."""
    jobs = job_table(Settings(), _subscriptions("subscribers: []\n"))
    assert [job.id for job in jobs] == ["retry", "reload", "prune"]


def test_an_0800_vienna_digest_fires_at_0800_local_across_the_march_dst_change() -> None:
    """30 March 2025 (clocks go forward): 08:00 Vienna is 07:00 UTC before, 06:00 UTC after."""
    trigger = DigestTime("Europe/Vienna", time(8), Frequency.DAILY, None).trigger()
    now = datetime(2025, 3, 28, 12, 0, tzinfo=UTC)
    fired = []
    for _ in range(4):
        fire = trigger.get_next_fire_time(None, now)
        fired.append(fire.astimezone(UTC))
        now = fire + timedelta(seconds=1)
    assert fired == [
        datetime(2025, 3, 29, 7, 0, tzinfo=UTC),
        datetime(2025, 3, 30, 6, 0, tzinfo=UTC),
        datetime(2025, 3, 31, 6, 0, tzinfo=UTC),
        datetime(2025, 4, 1, 6, 0, tzinfo=UTC),
    ]
    assert all(f.astimezone(VIENNA).time() == time(8) for f in fired)


def test_an_0800_vienna_digest_fires_once_on_the_october_dst_change() -> None:
    """26 October 2025 (clocks go back): one run at 08:00 CET, 07:00 UTC."""
    trigger = DigestTime("Europe/Vienna", time(8), Frequency.DAILY, None).trigger()
    now = datetime(2025, 10, 25, 12, 0, tzinfo=UTC)
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(None, first + timedelta(seconds=1))
    assert first.astimezone(UTC) == datetime(2025, 10, 26, 7, 0, tzinfo=UTC)
    assert second.astimezone(UTC) == datetime(2025, 10, 27, 7, 0, tzinfo=UTC)


def test_digest_jobs_in_dst_gaps_and_overlaps_agree_with_planning() -> None:
    """02:30 Vienna fires once in the missing hour and twice in the doubled one, harmlessly."""
    text = (
        'subscribers:\n  - email: a@example.org\n    timezone: Europe/Vienna\n    send_at: "02:30"'
    )
    [rule] = _subscriptions(text).rules()
    digest_time = DigestTime.of(rule)
    assert digest_time is not None
    trigger = digest_time.trigger()

    def fires(start: datetime, count: int) -> list[datetime]:
        previous, now, out = None, start, []
        for _ in range(count):
            previous = trigger.get_next_fire_time(previous, now)
            out.append(previous.astimezone(UTC))
            now = previous.astimezone(UTC) + timedelta(seconds=1)  # as the scheduler does
        return out

    gap = fires(datetime(2025, 3, 29, 12, 0, tzinfo=UTC), 2)
    assert gap == [
        datetime(2025, 3, 30, 1, 30, tzinfo=UTC),
        datetime(2025, 3, 31, 0, 30, tzinfo=UTC),
    ]
    # In the missing hour the job runs at 03:30 CEST, when planning finds the digest due.
    assert last_send_time(rule, gap[0]) == gap[0]

    overlap = fires(datetime(2025, 10, 25, 12, 0, tzinfo=UTC), 3)
    assert overlap == [
        datetime(2025, 10, 26, 0, 30, tzinfo=UTC),
        datetime(2025, 10, 26, 1, 30, tzinfo=UTC),
        datetime(2025, 10, 27, 1, 30, tzinfo=UTC),
    ]
    # Both runs of 26 October plan the same period: the same outbox key, queued once.
    assert last_send_time(rule, overlap[0]) == last_send_time(rule, overlap[1]) == overlap[0]
