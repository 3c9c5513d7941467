"""Matching: which subscribers get which items, and in which language.

The semantics are in the README ("Who gets what: matching"). The work is per distinct
rule, never per subscriber × item: identical rules are one object (the loader interns
them), an :class:`ItemIndex` answers each rule with set operations, and the answer comes
back grouped by rule so that rendering happens once per rule and language.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from publisher.matching.explain import CountryPart, Explanation, FieldPart, Verdict, explain
from publisher.matching.index import ItemIndex
from publisher.matching.language import NoTranslationError, choose_translation, language_chain
from publisher.store.items import StoredItem, StoredTranslation
from publisher.subscriptions.model import Rule, Subscriber, Subscriptions

_Chain = tuple[tuple[str, ...], tuple[str, ...]]  # see language_chain

__all__ = [
    "CountryPart",
    "Explanation",
    "FieldPart",
    "ItemIndex",
    "MatchedItem",
    "NoTranslationError",
    "RuleMatches",
    "Verdict",
    "choose_translation",
    "explain",
    "match",
]


@dataclass(frozen=True, slots=True)
class MatchedItem:
    """An item as one rule's subscribers read it."""

    item: StoredItem
    translation: StoredTranslation
    is_fallback: bool  # not in the subscriber's own language


@dataclass(frozen=True, slots=True)
class RuleMatches:
    """What one rule selects and who follows it: render once, send to each subscriber."""

    rule: Rule
    items: tuple[MatchedItem, ...]  # newest first, then by id; never empty
    subscribers: tuple[Subscriber, ...]  # in the order of the file

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(matched.item.id for matched in self.items)


def match(
    subscribers: Subscriptions | Iterable[Subscriber],
    items: Sequence[StoredItem] | ItemIndex,
    *,
    default_locale: str,
) -> list[RuleMatches]:
    """Each rule with items to send, its items and its subscribers.

    Rules that select no item are left out (no one gets an empty message). The list is
    in the order of each rule's first subscriber in the file.
    """
    if isinstance(subscribers, Subscriptions):
        subscribers = subscribers.subscribers
    index = items if isinstance(items, ItemIndex) else ItemIndex.build(items)
    followers: dict[Rule, list[Subscriber]] = {}
    for subscriber in subscribers:
        followers.setdefault(subscriber.rule, []).append(subscriber)
    # A rule's items in its languages depend only on what it selects and its language
    # chain: rules differing in time zone, hour or format share one tuple, and an item
    # is looked up in a chain's languages once.
    made: dict[tuple[frozenset[str], _Chain], tuple[MatchedItem, ...]] = {}
    read: dict[_Chain, dict[str, MatchedItem]] = {}
    out: list[RuleMatches] = []
    for rule, members in followers.items():
        ids = index.matching(rule)
        if not ids:
            continue
        chain = language_chain(rule.locale, rule.fallback_locales, default_locale)
        matched = made.get((ids, chain))
        if matched is None:
            in_chain = read.setdefault(chain, {})
            for item_id in ids - in_chain.keys():
                item = index.items[item_id]
                translation, is_fallback = choose_translation(
                    item, rule, default_locale=default_locale
                )
                in_chain[item_id] = MatchedItem(item, translation, is_fallback)
            matched = tuple(in_chain[item_id] for item_id in index.newest_first(ids))
            made[(ids, chain)] = matched
        out.append(RuleMatches(rule=rule, items=matched, subscribers=tuple(members)))
    return out
