"""The value of each rule key, checked and turned into its type.

A file of 100,000 subscribers repeats a few dozen distinct values, so every check is
cached by the raw text (and every list by its tuple of raw texts): each distinct value
is checked once. A wrong value's message is cached too, and reported at every place the
value occurs. ``Values.raw`` reads a value from its raw text alone, for the reading of
libyaml's events (``_events``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar
from zoneinfo import available_timezones

from babel import Locale, UnknownLocaleError
from yaml.nodes import Node, ScalarNode, SequenceNode

from publisher.subscriptions._email import email_problem
from publisher.subscriptions._nodes import NULL_TAG, Report, describe, did_you_mean, one_of, quote
from publisher.subscriptions.model import Format, Frequency
from publisher.taxonomy import Taxonomy, slugify

T = TypeVar("T")
V = TypeVar("V")
E = TypeVar("E", bound=StrEnum)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SEND_AT = re.compile(r"([0-9]{1,2}):([0-9]{2})")


@dataclass(frozen=True, slots=True)
class _Wrong:
    """The cached verdict that a raw value is wrong, and why."""

    message: str


@cache
def _time_zones() -> frozenset[str]:
    # Membership rather than ZoneInfo(key), which also opens files such as "localtime".
    return frozenset(available_timezones())


def _parse_locale(text: str) -> str | None:
    """Babel's own spelling of a locale identifier ("EN" → "en"), or None if unknown."""
    try:
        return str(Locale.parse(text))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


class Values:
    """Reads the values of one file; problems go to ``report``, the reader returns None."""

    def __init__(
        self,
        report: Report,
        taxonomy: Taxonomy,
        regions: Mapping[str, tuple[str, ...]],
        locales: Collection[str] | None,
    ) -> None:
        self.report = report
        self.taxonomy = taxonomy
        self.regions = regions  # the taxonomy's and the file's
        self.locales = None if locales is None else [_parse_locale(x) or x for x in locales]
        self._slugs = sorted(taxonomy.fields_of_work)
        # Valid values by raw text (lists: by the tuple of their items' raw texts) …
        self._slug: dict[str, str] = {}
        self._slugs_of: dict[tuple[str, ...], frozenset[str]] = {}
        self._place: dict[str, frozenset[str]] = {}
        self._places_of: dict[tuple[str, ...], tuple[frozenset[str], tuple[str, ...]]] = {}
        self._excluded_places_of: dict[tuple[str, ...], frozenset[str]] = {}
        self._locale: dict[str, str] = {}
        self._locales_of: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._zone: dict[str, str] = {}
        self._frequency: dict[str, Frequency] = {}
        self._format: dict[str, Format] = {}
        self._weekday: dict[str, int] = {}
        self._send_at: dict[str, time] = {}
        # … and what is wrong with wrong ones, by check and raw text.
        self._wrong: dict[tuple[object, str], _Wrong] = {}
        # Rule key → reader of its value.
        self.rule_keys: dict[str, Callable[[Node], object | None]] = {
            "fields_of_work": self.fields_of_work,
            "countries": self.countries,
            "exclude_fields_of_work": self.fields_of_work,
            "exclude_countries": self.exclude_countries,
            "locale": self.locale,
            "fallback_locales": self.fallback_locales,
            "timezone": self.timezone,
            "frequency": self.frequency,
            "send_at": self.send_at,
            "weekday": self.weekday,
            "format": self.format,
        }
        # Rule key → what reads its raw text: the cache and check of a scalar's value, or
        # the cache of a list's values, the cache and check of its items, and its builder.
        self._scalars: dict[str, tuple[dict[str, Any], Callable[[str], Any]]] = {
            "locale": (self._locale, self._check_locale),
            "timezone": (self._zone, self._check_zone),
            "frequency": (self._frequency, _check_frequency),
            "send_at": (self._send_at, _check_send_at),
            "weekday": (self._weekday, _check_weekday),
            "format": (self._format, _check_format),
        }
        slugs = (self._slugs_of, self._slug, self._check_slug, _frozenset)
        self._lists: dict[str, tuple[dict[Any, Any], dict[str, Any], Callable[..., Any], Any]] = {
            "fields_of_work": slugs,
            "countries": (self._places_of, self._place, self._check_place, _places),
            "exclude_fields_of_work": slugs,
            "exclude_countries": (self._excluded_places_of, self._place, self._check_place, _union),
            "fallback_locales": (self._locales_of, self._locale, self._check_locale, _ordered),
        }
        # Rule key → its cache of valid values by raw text (lists: by the tuple of their
        # items' texts). The fast paths look a raw value up here first, and read it from
        # its node (``rule_keys``) or its text (``raw``) only when it is not there.
        self.known: dict[str, Mapping[Any, object]] = {
            **{key: valid for key, (valid, _) in self._scalars.items()},
            **{key: built for key, (built, *_) in self._lists.items()},
        }

    def raw(self, key: str, raw: str | tuple[str, ...]) -> object | None:
        """The value of a rule key written as ``raw``, or None when it is wrong.

        ``raw`` is a scalar's text, or the texts of a list's items (``()`` for nothing).
        Nothing is reported: the caller reads a wrong value again from its node.
        """
        if (spec := self._lists.get(key)) is not None:
            built, cached, check, build = spec
            if type(raw) is not tuple:
                return None
            result: object = built.get(raw)
            if result is None:
                items = [self._verdict(text, cached, check) for text in raw]
                if any(isinstance(item, _Wrong) for item in items):
                    return None
                result = built[raw] = build(items, raw)
            return result
        valid, check = self._scalars[key]
        if type(raw) is not str:
            return None
        value: object = self._verdict(raw, valid, check)
        return None if isinstance(value, _Wrong) else value

    # -- rule keys ---------------------------------------------------------------------

    def fields_of_work(self, node: Node) -> frozenset[str] | None:
        return self._list(
            node, self._slugs_of, self._slug, self._check_slug, _frozenset,
            "a list of field-of-work slugs", "a field-of-work slug",
        )  # fmt: skip

    def countries(self, node: Node) -> tuple[frozenset[str], tuple[str, ...]] | None:
        return self._list(
            node, self._places_of, self._place, self._check_place, _places,
            "a list of country codes and region names", "a country code or a region name",
        )  # fmt: skip

    def exclude_countries(self, node: Node) -> frozenset[str] | None:
        return self._list(
            node, self._excluded_places_of, self._place, self._check_place, _union,
            "a list of country codes and region names", "a country code or a region name",
        )  # fmt: skip

    def locale(self, node: Node) -> str | None:
        return self._scalar(node, self._locale, self._check_locale, "a locale such as en")

    def fallback_locales(self, node: Node) -> tuple[str, ...] | None:
        return self._list(
            node, self._locales_of, self._locale, self._check_locale, _ordered,
            "a list of locales", "a locale such as en",
        )  # fmt: skip

    def timezone(self, node: Node) -> str | None:
        return self._scalar(node, self._zone, self._check_zone, "a time zone such as UTC")

    def frequency(self, node: Node) -> Frequency | None:
        return self._scalar(node, self._frequency, _check_frequency, "a frequency such as daily")

    def format(self, node: Node) -> Format | None:
        return self._scalar(node, self._format, _check_format, "a format: html or text")

    def weekday(self, node: Node) -> int | None:
        return self._scalar(node, self._weekday, _check_weekday, "a weekday such as monday")

    def send_at(self, node: Node) -> time | None:
        return self._scalar(node, self._send_at, _check_send_at, "a time of day such as 08:00")

    # -- other values ------------------------------------------------------------------

    def email(self, node: Node) -> str | None:
        """An address as written (stripped), if it is valid."""
        if type(node) is not ScalarNode or node.tag == NULL_TAG:
            self.report(node, f"expected an email address, found {describe(node)}")
            return None
        address: str = node.value.strip()
        if (wrong := email_problem(address)) is not None:
            self.report(node, f"invalid email address {quote(address)}: {wrong}")
            return None
        return address

    def text(self, node: Node, expected: str) -> str | None:
        """Free text such as a name; nothing is None, and so is anything reported."""
        if type(node) is ScalarNode:
            return None if node.tag == NULL_TAG else str(node.value).strip() or None
        self.report(node, f"expected {expected}, found {describe(node)}")
        return None

    # -- generic readers ---------------------------------------------------------------

    def _scalar(
        self,
        node: Node,
        valid: dict[str, T],
        check: Callable[[str], T | _Wrong],
        expected: str,
    ) -> T | None:
        if type(node) is ScalarNode and node.tag != NULL_TAG:
            value = self._verdict(node.value, valid, check)
            if not isinstance(value, _Wrong):
                return value
            self.report(node, value.message)
            return None
        self.report(node, f"expected {expected}, found {describe(node)}")
        return None

    def _verdict(
        self, text: str, valid: dict[str, T], check: Callable[[str], T | _Wrong]
    ) -> T | _Wrong:
        """The value written as ``text``, or why it is wrong; each text checked once."""
        value = valid.get(text)
        if value is not None:
            return value
        wrong = self._wrong.get((check, text))
        if wrong is None:
            verdict = check(text)
            if not isinstance(verdict, _Wrong):
                valid[text] = verdict
                return verdict
            wrong = self._wrong[check, text] = verdict
        return wrong

    def _list(
        self,
        node: Node,
        built: dict[tuple[str, ...], T],
        cached: dict[str, V],
        check: Callable[[str], V | _Wrong],
        build: Callable[[list[V], tuple[str, ...]], T],
        expected: str,
        expected_item: str,
    ) -> T | None:
        if type(node) is SequenceNode:
            try:
                raw = tuple([item.value for item in node.value])
                hit = built.get(raw)
            except TypeError:  # an item is a list or a mapping: unhashable
                raw, hit = (), None
            if hit is not None:
                return hit
            items = [self._scalar(item, cached, check, expected_item) for item in node.value]
            valid = [item for item in items if item is not None]
            if len(valid) < len(items):
                return None
            result = built[raw] = build(valid, raw)
            return result
        if type(node) is ScalarNode and node.tag == NULL_TAG:
            return build([], ())
        found = describe(node)
        if type(node) is ScalarNode:
            found = f"the single value {found}; write it in brackets: [{node.value}]"
        self.report(node, f"expected {expected}, found {found}")
        return None

    # -- checks of one raw value -------------------------------------------------------

    def _check_slug(self, text: str) -> str | _Wrong:
        if text in self.taxonomy.fields_of_work:
            return text
        slug = slugify(text)
        if slug in self.taxonomy.fields_of_work:
            return _Wrong(
                f"expected a field-of-work slug, found the label {quote(text)}; write {slug}"
            )
        hint = did_you_mean(slug, self._slugs) or f"; expected one of: {one_of(self._slugs)}"
        return _Wrong(f"unknown field of work {quote(text)}{hint}")

    def _check_place(self, text: str) -> frozenset[str] | _Wrong:
        if text in self.regions:
            return frozenset(self.regions[text])
        if text in self.taxonomy.countries:
            return frozenset((text,))
        return _Wrong(unknown_place(text, self.taxonomy, self.regions))

    def _check_locale(self, text: str) -> str | _Wrong:
        identifier = _parse_locale(text)
        if identifier is None:
            underscored = _parse_locale(text.replace("-", "_"))
            if underscored is not None:
                hint = f"; Babel writes it with '_': {underscored}"
            else:
                hint = did_you_mean(text, self.locales or ()) or (
                    "; expected a locale identifier known to Babel, such as en, ru or pt_BR"
                )
            return _Wrong(f"unknown locale {quote(text)}{hint}")
        if self.locales is not None and identifier not in self.locales:
            hint = did_you_mean(text, self.locales) or (
                f"; expected one of {one_of(self.locales)} (locales in publisher.toml)"
            )
            return _Wrong(f"locale {quote(text)} is not configured{hint}")
        return identifier

    def _check_zone(self, text: str) -> str | _Wrong:
        zones = _time_zones()
        if text in zones:
            return text
        hint = did_you_mean(text, zones) or "; expected an IANA time zone such as Europe/Vienna"
        return _Wrong(f"unknown time zone {quote(text)}{hint}")


def unknown_place(text: str, taxonomy: Taxonomy, regions: Collection[str]) -> str:
    """The message for a name that is neither a country code nor one of ``regions``."""
    what = "country code or region" if regions else "country code"
    found = f"unknown {what} {quote(text)}"
    if text.upper() in taxonomy.countries:
        return f"{found}; did you mean {quote(text.upper())}?"
    if (code := taxonomy.country(text)) is not None:
        return f"{found}; expected an ISO 3166 code: {code} for {text}"
    if hint := did_you_mean(text, regions):
        return found + hint
    expected = "; expected an ISO 3166 code of the taxonomy such as UZ"
    return found + expected + (f" or a region: {one_of(sorted(regions))}" if regions else "")


def _choice(kind: type[E], what: str) -> Callable[[str], E | _Wrong]:
    choices = [member.value for member in kind]

    def check(text: str) -> E | _Wrong:
        value = text.strip().lower()
        if value in choices:
            return kind(value)
        hint = did_you_mean(value, choices) or f"; expected one of {one_of(choices)}"
        return _Wrong(f"invalid {what} {quote(text)}{hint}")

    return check


_check_frequency = _choice(Frequency, "frequency")
_check_format = _choice(Format, "format")


def _check_weekday(text: str) -> int | _Wrong:
    day = text.strip().lower()
    if day in WEEKDAYS:
        return WEEKDAYS.index(day)
    hint = did_you_mean(day, WEEKDAYS) or f"; expected one of {one_of(WEEKDAYS)}"
    return _Wrong(f"invalid weekday {quote(text)}{hint}")


def _check_send_at(text: str) -> time | _Wrong:
    match = _SEND_AT.fullmatch(text.strip())
    if match is not None and int(match[1]) < 24 and int(match[2]) < 60:
        return time(int(match[1]), int(match[2]))
    return _Wrong(f"invalid send_at {quote(text)}; expected HH:MM, 24-hour, such as 08:00")


def _frozenset(items: list[str], raw: tuple[str, ...]) -> frozenset[str]:
    return frozenset(items)


def _union(items: list[frozenset[str]], raw: tuple[str, ...]) -> frozenset[str]:
    return frozenset().union(*items)


def _places(
    items: list[frozenset[str]], raw: tuple[str, ...]
) -> tuple[frozenset[str], tuple[str, ...]]:
    return frozenset().union(*items), raw


def _ordered(items: list[str], raw: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
