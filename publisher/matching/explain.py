"""Why an item is in or out for a rule, as data for ``publisher preview`` and ``explain``.

The same semantics as :class:`~publisher.matching.index.ItemIndex`, written per item and
rule so that every part of the decision can be shown; the tests hold the two to the same
answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from publisher.store.items import StoredItem
from publisher.subscriptions.model import Rule


class FieldPart(StrEnum):
    """How the item's fields of work meet the rule's."""

    ALL_FIELDS = "all-fields"  # the rule follows every field of work
    IN_COMMON = "in-common"  # ``Explanation.fields`` are the ones in common
    NONE_IN_COMMON = "none-in-common"


class CountryPart(StrEnum):
    """How the item's countries meet the rule's."""

    ALL_COUNTRIES = "all-countries"  # the rule follows every country
    NO_COUNTRY = "no-country"  # the item names no country: it concerns everyone
    IN_COMMON = "in-common"  # ``Explanation.countries`` are the ones in common
    NONE_IN_COMMON = "none-in-common"


class Verdict(StrEnum):
    """The decision, and its first reason when the item is out."""

    SENT = "sent"
    EXCLUDED_FIELD = "excluded-field"  # exclusions win over any match
    EXCLUDED_COUNTRY = "excluded-country"
    NO_FIELD_IN_COMMON = "no-field-in-common"
    NO_COUNTRY_IN_COMMON = "no-country-in-common"


@dataclass(frozen=True, slots=True)
class Explanation:
    """Every part of the decision for one item and one rule; tags are sorted."""

    item_id: str
    verdict: Verdict
    field_part: FieldPart
    fields: tuple[str, ...]  # fields of work in common (IN_COMMON only)
    country_part: CountryPart
    countries: tuple[str, ...]  # country codes in common (IN_COMMON only)
    excluded_fields: tuple[str, ...]  # the item's fields the rule excludes
    excluded_countries: tuple[str, ...]  # the item's countries the rule excludes

    @property
    def sent(self) -> bool:
        return self.verdict is Verdict.SENT


def explain(item: StoredItem, rule: Rule) -> Explanation:
    """Why ``item`` is sent to ``rule``'s subscribers, or why not."""
    item_fields = frozenset(item.fields_of_work)
    item_countries = frozenset(item.countries)
    fields = tuple(sorted(item_fields & rule.fields_of_work))
    countries = tuple(sorted(item_countries & rule.countries))
    if not rule.fields_of_work:
        field_part = FieldPart.ALL_FIELDS
    else:
        field_part = FieldPart.IN_COMMON if fields else FieldPart.NONE_IN_COMMON
    if not rule.countries:
        country_part = CountryPart.ALL_COUNTRIES
    elif not item_countries:
        country_part = CountryPart.NO_COUNTRY
    else:
        country_part = CountryPart.IN_COMMON if countries else CountryPart.NONE_IN_COMMON
    excluded_fields = tuple(sorted(item_fields & rule.exclude_fields_of_work))
    excluded_countries = tuple(sorted(item_countries & rule.exclude_countries))
    if excluded_fields:
        verdict = Verdict.EXCLUDED_FIELD
    elif excluded_countries:
        verdict = Verdict.EXCLUDED_COUNTRY
    elif field_part is FieldPart.NONE_IN_COMMON:
        verdict = Verdict.NO_FIELD_IN_COMMON
    elif country_part is CountryPart.NONE_IN_COMMON:
        verdict = Verdict.NO_COUNTRY_IN_COMMON
    else:
        verdict = Verdict.SENT
    return Explanation(
        item_id=item.id,
        verdict=verdict,
        field_part=field_part,
        fields=fields,
        country_part=country_part,
        countries=countries,
        excluded_fields=excluded_fields,
        excluded_countries=excluded_countries,
    )
