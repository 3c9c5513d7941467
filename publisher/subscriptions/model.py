"""What ``subscriptions.yaml`` means once read: subscribers, each with the rule they follow.

These objects cross from the loader to matching, rendering and scheduling, so they are
frozen. Identical rules are one shared :class:`Rule` object (the loader interns them):
later stages group subscribers by rule and render once per rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from pathlib import Path

from publisher.taxonomy import Taxonomy


class Frequency(StrEnum):
    """How often a subscriber is mailed."""

    IMMEDIATE = "immediate"  # one message per new item
    DAILY = "daily"  # one digest a day at ``send_at``
    WEEKLY = "weekly"  # one digest a week, on ``weekday`` at ``send_at``


class Format(StrEnum):
    """The body a subscriber prefers; both parts are always sent (multipart/alternative)."""

    HTML = "html"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Rule:
    """What a subscriber follows, and how and when they are told.

    An empty ``fields_of_work`` or ``countries`` means all of them. Countries are ISO
    3166-1 alpha-2 codes with region names already expanded; ``countries_as_written``
    keeps what the file said (codes and region names) to explain a rule to a person.
    """

    fields_of_work: frozenset[str]
    countries: frozenset[str]
    countries_as_written: tuple[str, ...]
    exclude_fields_of_work: frozenset[str]
    exclude_countries: frozenset[str]
    locale: str  # a Babel locale identifier: "en", "ru", "pt_BR"
    fallback_locales: tuple[str, ...]
    timezone: str  # a zoneinfo key: "Asia/Tashkent"
    frequency: Frequency
    send_at: time  # local time in ``timezone``; digests only
    weekday: int  # 0 = Monday, as datetime.weekday(); weekly only
    format: Format


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One address and the rule it follows."""

    email: str  # as written in the file, stripped
    name: str | None
    rule: Rule
    group: str | None  # the group's name when the address comes from a group
    line: int  # 1-based line where the address is given, for messages


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """Everything ``subscriptions.yaml`` says, validated."""

    path: Path
    subscribers: tuple[Subscriber, ...]
    regions: Mapping[str, tuple[str, ...]]  # the file's own regions only
    taxonomy: Taxonomy  # the taxonomy with the file's regions added
    _by_address: dict[str, Subscriber] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def get(self, email: str) -> Subscriber | None:
        """The subscriber with this address, compared without regard to case."""
        if self._by_address is None:  # made on first use: most callers never look up
            by_address = {s.email.lower(): s for s in self.subscribers}
            object.__setattr__(self, "_by_address", by_address)
            return by_address.get(email.strip().lower())
        return self._by_address.get(email.strip().lower())

    def rules(self) -> frozenset[Rule]:
        """The distinct rules; identical rules are one object, so this is cheap."""
        return frozenset(s.rule for s in self.subscribers)
