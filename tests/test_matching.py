"""Matching: which rule gets which items, in which language, and why."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from publisher.matching import (
    CountryPart,
    FieldPart,
    ItemIndex,
    NoTranslationError,
    Verdict,
    choose_translation,
    explain,
    match,
)
from publisher.settings import FolderSourceSettings
from publisher.sources.folder import FolderSource
from publisher.store import StoredItem, StoredTranslation, load_items, open_store, save_items
from publisher.subscriptions import Format, Frequency, Rule, Subscriber, load_subscriptions
from publisher.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]
T0 = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)
CENTRAL_ASIA = ("KZ", "KG", "TJ", "TM", "UZ")


def item(
    item_id: str = "item",
    *,
    fields: tuple[str, ...] = ("policing",),
    countries: tuple[str, ...] = ("UZ",),
    langs: tuple[str, ...] = ("en",),
    days: int = 0,
) -> StoredItem:
    """A stored item made by hand, published ``days`` after T0."""
    when = T0 + timedelta(days=days)
    return StoredItem(
        id=item_id,
        source="newsroom",
        published=when,
        updated=None,
        issuer=None,
        fields_of_work=fields,
        countries=countries,
        first_seen=when,
        changed_at=when,
        translations={
            lang: StoredTranslation(
                lang=lang,
                title=f"{item_id} ({lang})",
                summary="",
                body_html="<p></p>",
                url=None,
                first_seen=when,
                changed_at=when,
            )
            for lang in langs
        },
    )


def rule(
    *,
    fields: tuple[str, ...] = (),
    countries: tuple[str, ...] = (),
    exclude_fields: tuple[str, ...] = (),
    exclude_countries: tuple[str, ...] = (),
    locale: str = "en",
    fallback_locales: tuple[str, ...] = (),
    send_at: time = time(8),
) -> Rule:
    """A rule made by hand; countries are codes, regions already expanded."""
    return Rule(
        fields_of_work=frozenset(fields),
        countries=frozenset(countries),
        countries_as_written=countries,
        exclude_fields_of_work=frozenset(exclude_fields),
        exclude_countries=frozenset(exclude_countries),
        locale=locale,
        fallback_locales=fallback_locales,
        timezone="UTC",
        frequency=Frequency.DAILY,
        send_at=send_at,
        weekday=0,
        format=Format.HTML,
    )


def selected(r: Rule, *items: StoredItem) -> set[str]:
    """The ids the index selects for ``r``."""
    return set(ItemIndex.build(items).matching(r))


# -- fields of work ---------------------------------------------------------------------


def test_fields_are_any_of() -> None:
    """An item matches when it carries at least one of the rule's fields."""
    items = (
        item("one", fields=("policing", "youth")),
        item("two", fields=("elections",)),
        item("three", fields=("youth",)),
    )
    assert selected(rule(fields=("policing", "elections")), *items) == {"one", "two"}


def test_a_rule_without_fields_follows_all_fields() -> None:
    """No fields in the rule: every item passes the field part, even one without fields."""
    items = (item("one", fields=("policing",)), item("two", fields=()))
    assert selected(rule(), *items) == {"one", "two"}


def test_an_item_without_fields_reaches_only_rules_following_all_fields() -> None:
    """An item with no field of work has none in common with a rule naming fields."""
    assert selected(rule(fields=("policing",)), item(fields=())) == set()
    assert explain(item(fields=()), rule(fields=("policing",))).verdict is (
        Verdict.NO_FIELD_IN_COMMON
    )


# -- countries --------------------------------------------------------------------------


def test_countries_are_any_of() -> None:
    """An item matches when it names at least one of the rule's countries."""
    items = (item("uz", countries=("UZ", "KZ")), item("md", countries=("MD",)))
    assert selected(rule(countries=("KZ", "UA")), *items) == {"uz"}


def test_a_rule_without_countries_follows_all_countries() -> None:
    """No countries in the rule: every country passes."""
    items = (item("uz", countries=("UZ",)), item("md", countries=("MD",)))
    assert selected(rule(), *items) == {"uz", "md"}


def test_an_item_without_country_concerns_everyone() -> None:
    """Organisation-wide news (no country) passes every rule's country part."""
    wide = item("wide", countries=())
    assert selected(rule(countries=("UZ",)), wide) == {"wide"}
    why = explain(wide, rule(countries=("UZ",)))
    assert why.sent
    assert why.country_part is CountryPart.NO_COUNTRY


def test_a_region_is_its_countries() -> None:
    """A rule written with a region holds the region's codes and matches any of them."""
    central_asia = rule(countries=CENTRAL_ASIA)
    items = (
        item("tashkent", countries=("UZ",)),
        item("bishkek", countries=("KG",)),
        item("chisinau", countries=("MD",)),
    )
    assert selected(central_asia, *items) == {"tashkent", "bishkek"}
    assert explain(items[1], central_asia).countries == ("KG",)


def test_fields_and_countries_must_both_match() -> None:
    """The field part and the country part are both required."""
    items = (
        item("both", fields=("policing",), countries=("UZ",)),
        item("field-only", fields=("policing",), countries=("MD",)),
        item("country-only", fields=("elections",), countries=("UZ",)),
    )
    assert selected(rule(fields=("policing",), countries=("UZ",)), *items) == {"both"}


# -- exclusions -------------------------------------------------------------------------


def test_an_excluded_field_wins_over_a_match() -> None:
    """An item with any excluded field is not sent, though another field matches."""
    tagged = item(fields=("policing", "elections"))
    r = rule(fields=("policing",), exclude_fields=("elections",))
    assert selected(r, tagged) == set()
    why = explain(tagged, r)
    assert why.verdict is Verdict.EXCLUDED_FIELD
    assert why.excluded_fields == ("elections",)
    assert why.field_part is FieldPart.IN_COMMON


def test_an_excluded_country_wins_over_a_match() -> None:
    """An item with any excluded country is not sent, though another country matches."""
    tagged = item(countries=("UZ", "RU"))
    r = rule(countries=("UZ",), exclude_countries=("RU",))
    assert selected(r, tagged) == set()
    why = explain(tagged, r)
    assert why.verdict is Verdict.EXCLUDED_COUNTRY
    assert why.excluded_countries == ("RU",)


def test_exclusions_apply_to_rules_that_follow_everything() -> None:
    """A rule following all fields and countries still drops what it excludes."""
    items = (item("a", countries=("TR",)), item("b", countries=("GE",)), item("c", countries=()))
    assert selected(rule(exclude_countries=("TR",)), *items) == {"b", "c"}


# -- explanations -----------------------------------------------------------------------


def test_explain_says_what_matched() -> None:
    """A sent item's explanation names the fields and countries in common."""
    why = explain(
        item(fields=("policing", "youth"), countries=("UZ", "KZ")),
        rule(fields=("policing", "elections"), countries=("KZ", "MD")),
    )
    assert why.verdict is Verdict.SENT
    assert (why.field_part, why.fields) == (FieldPart.IN_COMMON, ("policing",))
    assert (why.country_part, why.countries) == (CountryPart.IN_COMMON, ("KZ",))


def test_explain_says_what_is_missing() -> None:
    """No field in common comes before no country in common; all-of parts are named."""
    out = item(fields=("elections",), countries=("MD",))
    assert explain(out, rule(fields=("policing",))).verdict is Verdict.NO_FIELD_IN_COMMON
    assert explain(out, rule(countries=("UZ",))).verdict is Verdict.NO_COUNTRY_IN_COMMON
    everything = explain(out, rule())
    assert (everything.field_part, everything.country_part) == (
        FieldPart.ALL_FIELDS,
        CountryPart.ALL_COUNTRIES,
    )


# -- languages --------------------------------------------------------------------------


def chosen(langs: tuple[str, ...], r: Rule, default: str = "en") -> tuple[str, bool]:
    """The language chosen for an item in ``langs`` and whether it is a fallback."""
    translation, is_fallback = choose_translation(item(langs=langs), r, default_locale=default)
    return translation.lang, is_fallback


def test_own_language_first() -> None:
    """A Russian reader gets the Russian text, not marked as a fallback."""
    assert chosen(("en", "ru"), rule(locale="ru", fallback_locales=("en",))) == ("ru", False)


def test_fallback_locales_in_order() -> None:
    """Without the reader's language, the fallbacks are tried in their order."""
    ukrainian = rule(locale="uk", fallback_locales=("ru", "en"))
    assert chosen(("en", "ru"), ukrainian) == ("ru", True)
    assert chosen(("en", "fr"), ukrainian) == ("en", True)
    assert chosen(("en", "ru"), rule(locale="ru", fallback_locales=("en",))) == ("ru", False)
    assert chosen(("en",), rule(locale="ru", fallback_locales=("en",))) == ("en", True)


def test_parent_locale_before_fallbacks() -> None:
    """pt_BR falls back to pt before its fallbacks, and pt counts as the reader's own."""
    brazilian = rule(locale="pt_BR", fallback_locales=("en",))
    assert chosen(("en", "pt"), brazilian) == ("pt", False)
    assert chosen(("en", "pt", "pt_BR"), brazilian) == ("pt_BR", False)
    assert chosen(("en", "es"), brazilian) == ("en", True)


def test_default_locale_after_fallbacks() -> None:
    """The organisation's default locale comes after the reader's fallbacks."""
    arabic = rule(locale="ar", fallback_locales=("fr",))
    assert chosen(("de", "en", "fr"), arabic) == ("fr", True)
    assert chosen(("de", "en"), arabic, default="de") == ("de", True)


def test_last_resort_is_english_then_alphabetical() -> None:
    """Without any chain language: English if there, else the first by language."""
    turkish = rule(locale="tr")
    assert chosen(("ru", "en", "de"), turkish, default="fr") == ("en", True)
    assert chosen(("ru", "de", "uk"), turkish, default="fr") == ("de", True)


def test_an_item_only_in_russian_reaches_an_english_reader_in_russian() -> None:
    """A Russian-only item is not dropped for an English reader: it comes as a fallback."""
    assert chosen(("ru",), rule(locale="en")) == ("ru", True)


def test_an_item_without_translation_is_an_error() -> None:
    """The store never holds such an item; if it does, the error names it."""
    with pytest.raises(NoTranslationError, match="'bare'"):
        choose_translation(item("bare", langs=()), rule(), default_locale="en")


# -- match: grouped by rule -------------------------------------------------------------


def subscriber(email: str, r: Rule) -> Subscriber:
    """A subscriber following ``r``."""
    return Subscriber(email=email, name=None, rule=r, group=None, line=1)


def test_match_groups_subscribers_by_rule_and_orders_items_newest_first() -> None:
    """One entry per rule with items: its items newest first, its subscribers in order."""
    russian = rule(fields=("policing",), locale="ru", fallback_locales=("en",))
    elections = rule(fields=("elections",))
    subscribers = [
        subscriber("a@example.org", russian),
        subscriber("b@example.org", elections),
        subscriber("c@example.org", russian),
    ]
    items = [
        item("old", langs=("en", "ru"), days=0),
        item("new", langs=("en",), days=2),
        item("same-day-b", days=1),
        item("same-day-a", days=1),
    ]
    (result,) = match(subscribers, items, default_locale="en")
    assert result.rule is russian
    assert [s.email for s in result.subscribers] == ["a@example.org", "c@example.org"]
    assert result.item_ids == ("new", "same-day-a", "same-day-b", "old")
    languages = [(m.translation.lang, m.is_fallback) for m in result.items]
    assert languages == [("en", True), ("en", True), ("en", True), ("ru", False)]


def test_rules_differing_only_in_schedule_share_their_items() -> None:
    """Rules that select the same items in the same languages share one items tuple."""
    morning, evening = rule(send_at=time(8)), rule(send_at=time(20))
    first, second = match(
        [subscriber("a@example.org", morning), subscriber("b@example.org", evening)],
        [item("one")],
        default_locale="en",
    )
    assert (first.rule, second.rule) == (morning, evening)
    assert first.items is second.items


# -- the index against the per-pair predicate -------------------------------------------

FIELDS = ("policing", "elections", "youth", "human-rights", "migration", "rule-of-law")
COUNTRIES = ("UZ", "KZ", "KG", "MD", "UA", "GE", "RS", "TR", "RU", "AT")


def brute_force(it: StoredItem, r: Rule) -> bool:
    """The semantics, written as plainly as possible for one item and one rule."""
    if any(f in r.exclude_fields_of_work for f in it.fields_of_work):
        return False
    if any(c in r.exclude_countries for c in it.countries):
        return False
    fields_ok = not r.fields_of_work or any(f in r.fields_of_work for f in it.fields_of_work)
    countries_ok = (
        not r.countries or not it.countries or any(c in r.countries for c in it.countries)
    )
    return fields_ok and countries_ok


def some(rng: random.Random, pool: tuple[str, ...], most: int) -> tuple[str, ...]:
    """Between none and ``most`` distinct values of ``pool``."""
    return tuple(rng.sample(pool, rng.randint(0, most)))


def test_index_equals_brute_force_on_random_data() -> None:
    """For 200 random rules × 300 random items the index and explain agree with per-pair."""
    rng = random.Random(20241206)
    items = [
        item(f"i{n}", fields=some(rng, FIELDS, 3), countries=some(rng, COUNTRIES, 3), days=n % 40)
        for n in range(300)
    ]
    rules = [
        rule(
            fields=some(rng, FIELDS, 3),
            countries=some(rng, COUNTRIES, 4),
            exclude_fields=some(rng, FIELDS, 1) if rng.random() < 0.2 else (),
            exclude_countries=some(rng, COUNTRIES, 2) if rng.random() < 0.2 else (),
        )
        for _ in range(200)
    ]
    index = ItemIndex.build(items)
    for r in rules:
        expected = {it.id for it in items if brute_force(it, r)}
        assert index.matching(r) == expected
        assert {it.id for it in items if explain(it, r).sent} == expected
    assert sum(len(index.matching(r)) for r in rules) > 0  # the data is not degenerate


def test_matching_is_cached_per_rule_filter() -> None:
    """Rules that differ only outside the tag parts get the same answer object."""
    index = ItemIndex.build([item("one")])
    r = rule(fields=("policing",))
    assert index.matching(r) is index.matching(replace(r, locale="ru", send_at=time(9)))


# -- the shipped sample data ------------------------------------------------------------


def test_shipped_analyst_gets_tashkent_in_russian_and_nothing_on_moldova(tmp_path: Path) -> None:
    """analyst@example.org (ru; policing, cyber; central Asia) gets Tashkent in Russian."""
    taxonomy = load_taxonomy()
    subscriptions = load_subscriptions(
        ROOT / "subscriptions.yaml", taxonomy=taxonomy, locales=LOCALES
    )
    source = FolderSource(
        FolderSourceSettings(name="newsroom", kind="folder", path=ROOT / "content"),
        taxonomy=taxonomy,
    )
    fetched = asyncio.run(source.fetch({}))
    assert fetched.problems == ()
    engine = open_store(f"sqlite:///{tmp_path / 'publisher.db'}")
    try:
        with engine.begin() as conn:
            save_items(conn, "newsroom", fetched.items, now=T0)
        with engine.connect() as conn:
            items = load_items(conn)
    finally:
        engine.dispose()

    results = {
        s.email: r for r in match(subscriptions, items, default_locale="en") for s in r.subscribers
    }
    analyst = results["analyst@example.org"]
    by_id = {m.item.id: m for m in analyst.items}
    tashkent = by_id["2024-12-06-tashkent-workshop"]
    assert (tashkent.translation.lang, tashkent.is_fallback) == ("ru", False)
    assert tashkent.translation.title.startswith("Региональный семинар ОБСЕ")
    assert not [i for i in by_id if "moldova" in i]
    for matched in analyst.items:
        assert "MD" not in matched.item.countries
        assert "elections" not in matched.item.fields_of_work
    moldova = next(i for i in items if i.id == "2024-11-12-moldova-domestic-observers")
    assert explain(moldova, analyst.rule).verdict is Verdict.NO_FIELD_IN_COMMON
    assert len(results["newsroom@example.com"].items) == len(items)  # follows everything
