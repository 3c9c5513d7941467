"""Rules: the values an entry gives over the defaults, one shared object per distinct rule.

Matching and rendering work once per rule, so identical rules must be one object,
looked up by every value of the rule in a fixed order. (A first look-up by the entry's
own values as written saved less than it cost: with the benchmark's mix, 70,624
distinct rules among 95,190 entries, it found one entry in five.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import time
from types import MappingProxyType
from typing import Any

from publisher.subscriptions.model import Format, Frequency, Rule

# The keys of a rule in the file: Rule's fields, but for countries_as_written, which
# comes with countries. In the order of Rule's fields, so a rule's values in this order
# are (nearly) its positional arguments.
RULE_KEYS = tuple(f.name for f in fields(Rule) if f.name != "countries_as_written")
# What a rule is when neither the entry nor `defaults` says (DESIGN.md).
BUILT_IN: Mapping[str, object] = MappingProxyType(
    {
        "fields_of_work": frozenset(),
        "countries": (frozenset(), ()),
        "exclude_fields_of_work": frozenset(),
        "exclude_countries": frozenset(),
        "locale": "en",
        "fallback_locales": (),
        "timezone": "UTC",
        "frequency": Frequency.DAILY,
        "send_at": time(8, 0),
        "weekday": 0,
        "format": Format.HTML,
    }
)


class RuleBook:
    """Builds rules over the defaults: one shared object per distinct rule."""

    def __init__(self, defaults: Mapping[str, object]) -> None:
        merged = {**BUILT_IN, **defaults}
        self._defaults = tuple(merged[name] for name in RULE_KEYS)
        # By every value in RULE_KEYS order: hashing a tuple is cheaper than a Rule.
        self._by_values: dict[tuple[Any, ...], Rule] = {}

    def rule(self, own: Mapping[str, object]) -> Rule:
        """The rule of an entry that says ``own`` (valid values only) over the defaults."""
        values = tuple(map(own.get, RULE_KEYS, self._defaults))
        rule = self._by_values.get(values)
        if rule is None:
            rule = self._by_values[values] = _make_rule(values)
        return rule


def _make_rule(values: tuple[Any, ...]) -> Rule:
    # Each value is what its reader in _values.py returned, in RULE_KEYS order; countries
    # come with how they were written. Positional arguments: half the cost of keywords.
    fields_of_work, (countries, countries_as_written), *others = values
    return Rule(fields_of_work, countries, countries_as_written, *others)
