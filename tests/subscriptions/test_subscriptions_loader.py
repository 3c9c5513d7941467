"""Reading subscriptions.yaml: the shipped sample, what rules mean, and the loader's API."""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import sys
import textwrap
from datetime import time
from pathlib import Path
from types import ModuleType

import pytest
from email_validator import validate_email

from publisher.errors import Problem, ValidationFailed
from publisher.subscriptions import (
    Format,
    Frequency,
    Subscriptions,
    check_subscriptions,
    load_subscriptions,
    parse_subscriptions,
)
from publisher.subscriptions._email import fast_email_check
from publisher.taxonomy import Taxonomy, load_taxonomy

REPO = Path(__file__).resolve().parents[2]
LOCALES = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]
CENTRAL_ASIA = frozenset({"KZ", "KG", "TJ", "TM", "UZ"})


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="module")
def shipped(taxonomy: Taxonomy) -> Subscriptions:
    return load_subscriptions(REPO / "subscriptions.yaml", taxonomy=taxonomy, locales=LOCALES)


def parse(text: str, taxonomy: Taxonomy, locales: list[str] | None = LOCALES) -> Subscriptions:
    return parse_subscriptions(
        textwrap.dedent(text), path="subscriptions.yaml", taxonomy=taxonomy, locales=locales
    )


def problems(text: str, taxonomy: Taxonomy) -> list[str]:
    try:
        parse(text, taxonomy)
    except ValidationFailed as failed:
        return [str(problem) for problem in failed.problems]
    return []


# -- the shipped sample -----------------------------------------------------------------


def test_shipped_file_has_no_problems(taxonomy: Taxonomy) -> None:
    """The bundled subscriptions.yaml checks clean against the nine configured locales."""
    path = REPO / "subscriptions.yaml"
    assert check_subscriptions(path, taxonomy=taxonomy, locales=LOCALES) == []


def test_shipped_file_covers_what_an_administrator_learns_from(shipped: Subscriptions) -> None:
    """The sample shows every locale asked for, each frequency, both formats, groups."""
    rules = [s.rule for s in shipped.subscribers]
    assert {r.locale for r in rules} >= {"en", "ru", "fr", "de", "uk", "ar", "es"}
    assert {r.frequency for r in rules} == set(Frequency)
    assert {r.format for r in rules} == set(Format)
    assert len({r.timezone for r in rules}) >= 5
    assert {s.group for s in shipped.subscribers} >= {"press-desk", "balkans-team", None}
    assert any(r.exclude_countries for r in rules) and any(r.exclude_fields_of_work for r in rules)
    assert all(s.email.rsplit(".", 1)[-1] in {"org", "com", "net"} for s in shipped.subscribers)


def test_analyst_rule_is_the_one_in_design(shipped: Subscriptions) -> None:
    """analyst@example.org follows policing and cyber in Uzbekistan and Central Asia, in Russian."""
    analyst = shipped.get("analyst@example.org")
    assert analyst is not None
    assert analyst.name == "A. Analyst"
    assert analyst.group is None
    rule = analyst.rule
    assert rule.locale == "ru"
    assert rule.fallback_locales == ("en",)
    assert rule.timezone == "Asia/Tashkent"
    assert rule.fields_of_work == {"policing", "cyber-ict-security"}
    assert rule.countries == CENTRAL_ASIA  # UZ plus the region, expanded
    assert rule.countries_as_written == ("UZ", "central-asia")
    assert rule.exclude_fields_of_work == frozenset()
    assert rule.exclude_countries == frozenset()
    assert rule.frequency is Frequency.IMMEDIATE


def test_group_members_share_the_group_rule_over_defaults(shipped: Subscriptions) -> None:
    """Both press-desk addresses get one Rule: the group's keys over the file's defaults."""
    desk, editor = shipped.get("desk@example.org"), shipped.get("editor@example.org")
    assert desk is not None and editor is not None
    assert desk.group == editor.group == "press-desk"
    assert desk.rule is editor.rule
    assert desk.rule.fields_of_work == {"media-freedom-and-development"}
    assert desk.rule.frequency is Frequency.IMMEDIATE  # the group's
    assert desk.rule.timezone == "Europe/Vienna"  # the defaults'
    assert desk.rule.countries == frozenset()  # all


def test_defaults_fill_what_an_entry_leaves_out(shipped: Subscriptions) -> None:
    """An entry with only an address gets every value from defaults."""
    newsroom = shipped.get("newsroom@example.com")
    assert newsroom is not None
    rule = newsroom.rule
    assert (rule.locale, rule.timezone, rule.frequency) == ("en", "Europe/Vienna", "daily")
    assert (rule.send_at, rule.weekday, rule.format) == (time(8, 0), 0, Format.HTML)
    assert rule.fields_of_work == rule.countries == frozenset()


def test_weekly_rule_has_weekday_number_and_time(shipped: Subscriptions) -> None:
    """weekday: friday becomes 4 (Monday is 0) and send_at "16:00" a datetime.time."""
    observer = shipped.get("observatrice@example.org")
    assert observer is not None
    assert observer.rule.frequency is Frequency.WEEKLY
    assert observer.rule.weekday == 4
    assert observer.rule.send_at == time(16, 0)
    assert observer.rule.format is Format.TEXT


def test_file_regions_extend_the_taxonomy(shipped: Subscriptions) -> None:
    """The file's own region expands in rules and is added to the returned taxonomy."""
    desk = shipped.get("blacksea.desk@example.net")
    assert desk is not None
    assert desk.rule.countries == {"BG", "GE", "MD", "RO", "TR", "UA"}
    assert desk.rule.exclude_countries == {"TR"}
    assert shipped.regions["black-sea"] == ("BG", "GE", "MD", "RO", "TR", "UA")
    assert shipped.taxonomy.regions["black-sea"] == shipped.regions["black-sea"]
    assert shipped.taxonomy.regions["south-caucasus"] == ("AM", "AZ", "GE")  # built-in kept
    german = shipped.get("grenzschutz@example.com")
    assert german is not None and german.rule.exclude_countries == CENTRAL_ASIA


def test_lookup_by_address_ignores_case(shipped: Subscriptions) -> None:
    """get() finds an address whatever its case and surrounding spaces; None otherwise."""
    found = shipped.get("  Analyst@EXAMPLE.org ")
    assert found is not None and found.email == "analyst@example.org"
    assert shipped.get("nobody@example.org") is None


def test_subscriber_line_points_at_its_entry(shipped: Subscriptions) -> None:
    """Subscriber.line is where the entry starts, or the member's line in a group."""
    lines = (REPO / "subscriptions.yaml").read_text(encoding="utf-8").splitlines()
    for subscriber in shipped.subscribers:
        assert subscriber.email in lines[subscriber.line - 1]


# -- what values mean -------------------------------------------------------------------


def test_built_in_defaults_without_a_defaults_section(taxonomy: Taxonomy) -> None:
    """With no defaults: en, UTC, daily at 08:00, Monday, html, no fallbacks, all news."""
    loaded = parse("subscribers:\n  - email: someone@example.org\n", taxonomy)
    rule = loaded.subscribers[0].rule
    assert (rule.locale, rule.timezone, rule.frequency) == ("en", "UTC", Frequency.DAILY)
    assert (rule.send_at, rule.weekday, rule.format) == (time(8, 0), 0, Format.HTML)
    assert rule.fallback_locales == ()
    assert rule.fields_of_work == rule.countries == rule.exclude_countries == frozenset()


def test_no_is_norway_not_false(taxonomy: Taxonomy) -> None:
    """countries: [NO] unquoted means Norway (YAML 1.1 would read it as false)."""
    loaded = parse(
        """
        regions:
          scandinavia: [DK, NO, SE]
        subscribers:
          - email: oslo@example.org
            countries: [NO, scandinavia]
        """,
        taxonomy,
    )
    rule = loaded.subscribers[0].rule
    assert rule.countries == {"DK", "NO", "SE"}
    assert rule.countries_as_written == ("NO", "scandinavia")


def test_unquoted_send_at_is_a_time_not_sexagesimal(taxonomy: Taxonomy) -> None:
    """send_at: 08:00 unquoted is eight o'clock (YAML 1.1 would read 480); 7:30 works too."""
    loaded = parse(
        """
        subscribers:
          - email: early@example.org
            send_at: 08:00
          - email: earlier@example.org
            send_at: 7:30
        """,
        taxonomy,
    )
    assert [s.rule.send_at for s in loaded.subscribers] == [time(8, 0), time(7, 30)]


def test_words_are_read_without_regard_to_case(taxonomy: Taxonomy) -> None:
    """Weekday, frequency and format accept any case; the locale takes Babel's spelling."""
    loaded = parse(
        """
        subscribers:
          - email: a@example.org
            weekday: Friday
            frequency: WEEKLY
            format: Text
            locale: RU
        """,
        taxonomy,
    )
    rule = loaded.subscribers[0].rule
    assert (rule.weekday, rule.frequency, rule.format, rule.locale) == (4, "weekly", "text", "ru")


def test_empty_list_or_nothing_means_all(taxonomy: Taxonomy) -> None:
    """countries: [] or countries: with nothing overrides the defaults with "all"."""
    loaded = parse(
        """
        defaults:
          countries: [UA]
        subscribers:
          - email: a@example.org
            countries: []
          - email: b@example.org
            countries:
          - email: c@example.org
        """,
        taxonomy,
    )
    assert [s.rule.countries for s in loaded.subscribers] == [frozenset(), frozenset(), {"UA"}]


def test_identical_rules_are_one_object(taxonomy: Taxonomy) -> None:
    """Subscribers with the same rule share one Rule, even written in another key order."""
    loaded = parse(
        """
        defaults:
          timezone: Europe/Vienna
        subscribers:
          - email: a@example.org
            locale: ru
            fields_of_work: [policing, elections]
          - email: b@example.org
            fields_of_work: [elections, policing]
            locale: ru
          - email: c@example.org
            locale: ru
            fields_of_work: [policing, elections]
            timezone: Europe/Vienna
          - email: d@example.org
            locale: fr
            fields_of_work: [policing, elections]
        """,
        taxonomy,
    )
    a, b, c, d = (s.rule for s in loaded.subscribers)
    assert a is b  # the same set of slugs, listed in another order
    assert a is c  # the default written out is the same rule
    assert d is not a and d != a
    assert len({id(rule) for rule in (a, b, c, d)}) == len(loaded.rules()) == 2


def test_rule_equality_and_hash_are_by_value(shipped: Subscriptions) -> None:
    """A Rule equals and hashes like a copy of itself, so rules can key dictionaries."""
    rule = shipped.subscribers[0].rule
    copy = dataclasses.replace(rule)
    assert copy == rule and hash(copy) == hash(rule) and copy is not rule
    assert {rule: 1}[copy] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.locale = "fr"  # type: ignore[misc]


def test_region_restated_as_in_the_taxonomy_is_accepted(taxonomy: Taxonomy) -> None:
    """DESIGN.md's example restates central-asia; the same countries in any order are fine."""
    loaded = parse(
        """
        regions:
          central-asia: [UZ, KZ, KG, TJ, TM]
        subscribers:
          - email: a@example.org
            countries: [central-asia]
        """,
        taxonomy,
    )
    assert loaded.subscribers[0].rule.countries == CENTRAL_ASIA


def test_regions_may_be_used_before_they_are_defined(taxonomy: Taxonomy) -> None:
    """A rule may name a region that the file defines further down."""
    loaded = parse(
        """
        subscribers:
          - email: a@example.org
            countries: [danube]
        regions:
          danube: [AT, SK, HU]
        """,
        taxonomy,
    )
    assert loaded.subscribers[0].rule.countries == {"AT", "SK", "HU"}


def test_any_babel_locale_when_locales_are_not_given(taxonomy: Taxonomy) -> None:
    """Without a list of configured locales, any locale Babel knows is accepted."""
    loaded = parse("subscribers:\n  - email: a@example.org\n    locale: pt_BR\n", taxonomy, None)
    assert loaded.subscribers[0].rule.locale == "pt_BR"


def test_internationalized_address_is_accepted(taxonomy: Taxonomy) -> None:
    """An address the fast check rejects but email-validator accepts is kept as written."""
    loaded = parse("subscribers:\n  - email: ' аналитик@пример.рф'\n", taxonomy)
    assert loaded.subscribers[0].email == "аналитик@пример.рф"


@pytest.mark.parametrize(
    "address",
    [
        "a@example.org", "first.last+tag@sub.example.com", "x@example.museum",
        "a..b@example.org", ".a@example.org", "a.@example.org", "a@example", "a@localhost",
        "a@example.test", "a@example.local", "a@host.invalid", "a@example.123",
        "a@-example.org", "a@example-.org", "a@@example.org", "a b@example.org",
        "A. Name <a@example.org>", f"{'x' * 64}@example.org", f"{'x' * 65}@example.org",
        f"a@{'b' * 63}.{'c' * 63}.{'d' * 63}.{'e' * 57}.org", '"quoted"@example.org',
    ],
)  # fmt: skip
def test_fast_email_check_is_never_looser_than_email_validator(address: str) -> None:
    """What the regex pre-check accepts, email-validator accepts too."""
    if fast_email_check(address):
        validate_email(address, check_deliverability=False)  # must not raise


def test_fast_email_check_accepts_ordinary_addresses() -> None:
    """Ordinary addresses take the fast path (email-validator costs ~80 µs each)."""
    for address in ["analyst@example.org", "o'brien@mail.example.co.uk", "x_y-z@a-b.example"]:
        assert fast_email_check(address), address


# -- the API ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing yet\n", "subscribers:\n", "---\n"])
def test_empty_file_means_no_subscribers(text: str, taxonomy: Taxonomy) -> None:
    """An empty file, or one with only comments or empty sections, is valid and sends nothing."""
    loaded = parse(text, taxonomy)
    assert loaded.subscribers == ()
    assert loaded.regions == {}
    assert loaded.taxonomy is taxonomy


def test_unreadable_file_is_one_problem(taxonomy: Taxonomy, tmp_path: Path) -> None:
    """A missing file is reported as a problem of that file, and load raises from the OSError."""
    missing = tmp_path / "subscriptions.yaml"
    [problem] = check_subscriptions(missing, taxonomy=taxonomy)
    assert str(problem) == f"{missing}:1:1: cannot read the file: No such file or directory"
    with pytest.raises(ValidationFailed) as caught:
        load_subscriptions(missing, taxonomy=taxonomy)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_bytes_with_a_byte_order_mark_are_read(taxonomy: Taxonomy) -> None:
    """A UTF-8 byte order mark (Windows editors) is skipped, positions unchanged."""
    data = "\ufeffsubscribers:\n  - email: a@example.org\n    locale: xx\n".encode()
    with pytest.raises(ValidationFailed) as caught:
        parse_subscriptions(data, path="s.yaml", taxonomy=taxonomy)
    assert [(p.line, p.column) for p in caught.value.problems] == [(3, 13)]


def test_problems_carry_the_path_given(taxonomy: Taxonomy) -> None:
    """parse_subscriptions names the path it is given, and the result keeps it."""
    text = "subscribers:\n  - email: a@example.org\n"
    loaded = parse_subscriptions(text, path="conf/subscriptions.yaml", taxonomy=taxonomy)
    assert loaded.path == Path("conf/subscriptions.yaml")
    assert problems("subscribers: {}\n", taxonomy) == [
        "subscriptions.yaml:1:14: expected a list of subscribers under subscribers, found a mapping"
    ]


def test_same_wrong_value_is_reported_everywhere(taxonomy: Taxonomy) -> None:
    """A cached wrong value is still reported at each place it occurs."""
    found = problems(
        """
        subscribers:
          - email: a@example.org
            timezone: Europe/Viena
          - email: b@example.org
            timezone: Europe/Viena
        """,
        taxonomy,
    )
    assert [line.split(":")[1] for line in found] == ["4", "6"]


def test_group_with_a_bad_member_keeps_the_others(taxonomy: Taxonomy) -> None:
    """check lists a bad member; the problems name it, not the group's other members."""
    found = problems(
        """
        groups:
          - name: desk
            emails: [a@example.org, not-an-address, b@example.org]
        """,
        taxonomy,
    )
    assert len(found) == 1 and "'not-an-address'" in found[0]


@pytest.mark.parametrize("enabled", [True, False])
def test_garbage_collector_is_left_as_found(enabled: bool, taxonomy: Taxonomy) -> None:
    """The loader pauses the cyclic collector while it works and restores its state."""
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        parse("subscribers:\n  - email: a@example.org\n", taxonomy)
        with pytest.raises(ValidationFailed):
            parse("subscribers: [", taxonomy)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_problem_is_the_shared_error_type(taxonomy: Taxonomy) -> None:
    """Problems are publisher.errors.Problem, sorted by position, 1-based."""
    with pytest.raises(ValidationFailed) as caught:
        parse("subscribers:\n  - email: b\n  - email: a\n", taxonomy)
    assert all(isinstance(p, Problem) for p in caught.value.problems)
    assert [(p.line, p.column) for p in caught.value.problems] == [(2, 12), (3, 12)]


def _synthetic(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    path = REPO / "benchmarks" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("synthetic", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "synthetic", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_benchmark_data_is_valid(taxonomy: Taxonomy, monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's synthetic file loads clean, with every locale and frequency in it."""
    synthetic = _synthetic(monkeypatch)
    text = synthetic.subscriptions_yaml(3000, seed=7)
    loaded = parse_subscriptions(text, path="synthetic.yaml", taxonomy=taxonomy, locales=LOCALES)
    assert len(loaded.subscribers) == 3000
    rules = loaded.rules()
    assert {r.locale for r in rules} == set(LOCALES)
    assert {r.frequency for r in rules} == set(Frequency)
    assert len({r.timezone for r in rules}) >= 24
    assert any(s.group for s in loaded.subscribers)
    assert synthetic.subscriptions_yaml(50, seed=7) == synthetic.subscriptions_yaml(50, seed=7)
