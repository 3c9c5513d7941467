"""The job table: which jobs the service runs, derived from the settings and the rules.

One collection job per enabled source at its interval; one digest job per distinct
(time zone, send time, frequency, weekday) among the rules, fired by a CronTrigger in
that zone so that 08:00 stays 08:00 local time across daylight-saving changes; one
retry job for outbox rows waiting for their backoff; one job that reads
``subscriptions.yaml`` again when it changed; one that prunes the outbox of what it no
longer needs to remember. The table is data: the service
registers it, and tests read it without running anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

# APScheduler 3 ships no type information.
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from publisher.settings import Settings
from publisher.subscriptions.model import Frequency, Rule, Subscriptions

RETRY_INTERVAL = timedelta(minutes=1)
RELOAD_INTERVAL = timedelta(seconds=5)
# Pruning deletes what finished longer ago than `[outbox] keep`: an hour late is nothing,
# and an hourly run has at most an hour's messages to delete.
PRUNE_INTERVAL = timedelta(hours=1)
# CronTrigger's day_of_week names, indexed like datetime.weekday() and Rule.weekday.
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class JobKind(StrEnum):
    COLLECT = "collect"  # collect one source, then deliver alerts if it found new items
    DIGEST = "digest"  # plan + send: digests whose send time has come
    RETRY = "retry"  # send alone: rows whose backoff has passed
    RELOAD = "reload"  # read subscriptions.yaml again if it changed
    PRUNE = "prune"  # delete what the outbox no longer needs (publisher.store.outbox.prune)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduled job: a stable id (unique in the table) and when it fires."""

    id: str
    kind: JobKind
    trigger: BaseTrigger
    source: str | None = None  # the source's name, for COLLECT jobs


@dataclass(frozen=True, slots=True, order=True)
class DigestTime:
    """When a group of digests goes out: what the rules of one digest job share."""

    timezone: str
    send_at: time
    frequency: Frequency
    weekday: int | None  # weekly only

    @classmethod
    def of(cls, rule: Rule) -> DigestTime | None:
        if rule.frequency is Frequency.IMMEDIATE:
            return None
        weekly = rule.frequency is Frequency.WEEKLY
        return cls(rule.timezone, rule.send_at, rule.frequency, rule.weekday if weekly else None)

    @property
    def job_id(self) -> str:
        """``digest:daily:Asia/Tashkent:09:00``, ``digest:weekly:mon:Europe/Vienna:08:00``."""
        day = "" if self.weekday is None else f"{_WEEKDAYS[self.weekday]}:"
        return f"digest:{self.frequency}:{day}{self.timezone}:{self.send_at:%H:%M}"

    def trigger(self) -> CronTrigger:
        return CronTrigger(
            day_of_week=None if self.weekday is None else _WEEKDAYS[self.weekday],
            hour=self.send_at.hour,
            minute=self.send_at.minute,
            second=self.send_at.second,
            timezone=ZoneInfo(self.timezone),
        )


def collect_jobs(settings: Settings) -> list[JobSpec]:
    """One job per enabled source, every ``interval``."""
    return [
        JobSpec(
            id=f"collect:{source.name}",
            kind=JobKind.COLLECT,
            trigger=IntervalTrigger(seconds=source.interval.total_seconds(), timezone="UTC"),
            source=source.name,
        )
        for source in settings.sources
        if source.enabled
    ]


def digest_jobs(subscriptions: Subscriptions) -> list[JobSpec]:
    """One cron job per distinct digest time among the rules, in a stable order."""
    times = sorted({t for rule in subscriptions.rules() if (t := DigestTime.of(rule))})
    return [JobSpec(id=t.job_id, kind=JobKind.DIGEST, trigger=t.trigger()) for t in times]


def retry_job() -> JobSpec:
    return JobSpec(
        id="retry",
        kind=JobKind.RETRY,
        trigger=IntervalTrigger(seconds=RETRY_INTERVAL.total_seconds(), timezone="UTC"),
    )


def reload_job() -> JobSpec:
    return JobSpec(
        id="reload",
        kind=JobKind.RELOAD,
        trigger=IntervalTrigger(seconds=RELOAD_INTERVAL.total_seconds(), timezone="UTC"),
    )


def prune_job() -> JobSpec:
    return JobSpec(
        id="prune",
        kind=JobKind.PRUNE,
        trigger=IntervalTrigger(seconds=PRUNE_INTERVAL.total_seconds(), timezone="UTC"),
    )


def job_table(settings: Settings, subscriptions: Subscriptions) -> list[JobSpec]:
    """Every job the service schedules for these settings and rules."""
    return [
        *collect_jobs(settings),
        *digest_jobs(subscriptions),
        retry_job(),
        reload_job(),
        prune_job(),
    ]
