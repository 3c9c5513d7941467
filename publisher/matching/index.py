"""The inverted index of items: which items a rule selects, by set operations.

Matching is per distinct rule, never per subscriber × item (DESIGN.md): the index maps
each field of work and each country to the ids of the items tagged with it, and a rule's
items are a few unions, one intersection and one difference of those sets. Only the
four tag parts of a rule select items, so rules that differ in time zone, hour or
language share one cached answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from publisher.store.items import StoredItem
from publisher.subscriptions.model import Rule

# What selects items: fields, countries, excluded fields, excluded countries.
_Filter = tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]
_EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ItemIndex:
    """Items by field of work and by country; build it once per batch of items."""

    items: Mapping[str, StoredItem]  # by id, newest first
    all_ids: frozenset[str]
    by_field: Mapping[str, frozenset[str]]
    by_country: Mapping[str, frozenset[str]]
    without_country: frozenset[str]  # organisation-wide news: concerns every country
    position: Mapping[str, int]  # an item's rank, newest first
    _cache: dict[_Filter, frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def build(cls, items: Sequence[StoredItem]) -> ItemIndex:
        """Index ``items``, ordered newest first then by id (``load_items``'s order)."""
        ordered = sorted(items, key=lambda item: item.id)
        ordered.sort(key=lambda item: item.published, reverse=True)
        by_field: dict[str, set[str]] = {}
        by_country: dict[str, set[str]] = {}
        for item in ordered:
            for slug in item.fields_of_work:
                by_field.setdefault(slug, set()).add(item.id)
            for code in item.countries:
                by_country.setdefault(code, set()).add(item.id)
        return cls(
            items=MappingProxyType({item.id: item for item in ordered}),
            all_ids=frozenset(item.id for item in ordered),
            by_field=MappingProxyType({k: frozenset(v) for k, v in by_field.items()}),
            by_country=MappingProxyType({k: frozenset(v) for k, v in by_country.items()}),
            without_country=frozenset(item.id for item in ordered if not item.countries),
            position=MappingProxyType({item.id: rank for rank, item in enumerate(ordered)}),
        )

    def matching(self, rule: Rule) -> frozenset[str]:
        """The ids of the items ``rule`` selects (see the README's "Who gets what")."""
        key = (
            rule.fields_of_work,
            rule.countries,
            rule.exclude_fields_of_work,
            rule.exclude_countries,
        )
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._select(*key)
        return found

    def newest_first(self, ids: Iterable[str]) -> tuple[str, ...]:
        """``ids`` (of indexed items) in the index's order: newest first, then by id."""
        return tuple(sorted(ids, key=self.position.__getitem__))

    def _select(
        self,
        fields: frozenset[str],
        countries: frozenset[str],
        exclude_fields: frozenset[str],
        exclude_countries: frozenset[str],
    ) -> frozenset[str]:
        selected = self.all_ids if not fields else _union(self.by_field, fields)
        if countries:
            selected = selected & (_union(self.by_country, countries) | self.without_country)
        if exclude_fields:
            selected = selected - _union(self.by_field, exclude_fields)
        if exclude_countries:
            selected = selected - _union(self.by_country, exclude_countries)
        return selected


def _union(index: Mapping[str, frozenset[str]], keys: frozenset[str]) -> frozenset[str]:
    sets = [index[key] for key in keys if key in index]
    if len(sets) == 1:  # the common case: shared, not copied
        return sets[0]
    return _EMPTY.union(*sets)
