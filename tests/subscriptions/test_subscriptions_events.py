"""Reading from libyaml's events: the same subscriptions and problems as the careful
reading over the whole node tree, or none at all (and then the loader does that one)."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from publisher.errors import Problem, ValidationFailed
from publisher.subscriptions import Subscriptions, parse_subscriptions
from publisher.subscriptions._document import read_document
from publisher.subscriptions._events import read_events
from publisher.subscriptions._nodes import Report
from publisher.subscriptions.loader import _compose
from publisher.taxonomy import Taxonomy, load_taxonomy

REPO = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).parent / "broken"
LOCALES = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]
PATH = Path("subscriptions.yaml")


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def careful_with_problems(text: str, taxonomy: Taxonomy) -> tuple[Subscriptions, list[Problem]]:
    """The reading over the whole node tree, which the loader falls back on."""
    report = Report(str(PATH))
    read = read_document(
        _compose(text, report), path=PATH, report=report, taxonomy=taxonomy, locales=LOCALES
    )
    return read, sorted(report.problems, key=lambda p: (p.line, p.column))


def careful(text: str, taxonomy: Taxonomy) -> Subscriptions:
    read, problems = careful_with_problems(text, taxonomy)
    assert problems == []
    return read


def events_with_problems(
    text: str, taxonomy: Taxonomy
) -> tuple[Subscriptions | None, list[Problem]]:
    report = Report(str(PATH))
    read = read_events(text, path=PATH, report=report, taxonomy=taxonomy, locales=LOCALES)
    return read, sorted(report.problems, key=lambda p: (p.line, p.column))


def from_events(text: str, taxonomy: Taxonomy) -> Subscriptions | None:
    read, problems = events_with_problems(text, taxonomy)
    assert read is None or problems == []
    return read


def _synthetic(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    path = REPO / "benchmarks" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("synthetic", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "synthetic", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


# Files without problems that the events give as they come: the usual shapes.
USUAL = {
    "empty sections": "defaults:\nregions:\ngroups:\nsubscribers:\n",
    "explicit document": "---\nsubscribers:\n  - email: a@example.org\n...\n",
    "flow entries": "subscribers: [{email: a@example.org, locale: fr}, {email: b@example.org}]",
    "quoted keys and values": """
        subscribers:
          - "email": 'a@example.org'
            "send_at": "07:30"
            name: "Null"
        """,
    "nothing as values": """
        subscribers:
          - email: a@example.org
            name:
            fields_of_work:
            countries: ~
            exclude_countries: []
            fallback_locales: null
        """,
    "lists written both ways": """
        regions:
          caspian: [KZ, TM, AZ]
        subscribers:
          - email: a@example.org
            countries: [caspian, GE]
          - email: b@example.org
            countries:
              - caspian
              - GE
            fallback_locales: [ru, en, ru]
        """,
    "defaults, groups and names": """
        defaults:
          locale: ru
          countries: [central-asia]
        groups:
          - name: desk
            emails: [a@example.org, B@example.org]
            frequency: weekly
            weekday: Friday
        subscribers:
          - email: c@example.org
            name: "  Ana  "
            frequency: IMMEDIATE
        """,
}

# Files without problems that the events leave to the careful reading.
UNUSUAL = {
    "anchor and alias": """
        subscribers:
          - email: a@example.org
            countries: &east [UA, MD]
          - email: b@example.org
            countries: *east
        """,
    "tag": "subscribers:\n  - email: !!str a@example.org\n",
    "anchor on nothing": "groups: &none\nsubscribers:\n  - email: a@example.org\n",
    "regions after the entries": """
        subscribers:
          - email: a@example.org
            countries: [caspian]
        regions:
          caspian: [KZ, TM, AZ]
        """,
    "defaults after the entries": """
        subscribers:
          - email: a@example.org
        defaults:
          locale: fr
        """,
    "empty file": "# nobody yet\n",
}


@pytest.mark.parametrize("text", USUAL.values(), ids=USUAL.keys())
def test_usual_files_are_read_from_events_as_from_the_tree(text: str, taxonomy: Taxonomy) -> None:
    """A usual file without problems is read from its events, equal to the careful reading."""
    text = textwrap.dedent(text)
    assert from_events(text, taxonomy) == careful(text, taxonomy)


@pytest.mark.parametrize("text", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_unusual_files_are_left_to_the_careful_reading(text: str, taxonomy: Taxonomy) -> None:
    """Anchors, tags and late regions or defaults are read from the tree, and read right."""
    text = textwrap.dedent(text)
    assert from_events(text, taxonomy) is None
    loaded = parse_subscriptions(text, path=PATH, taxonomy=taxonomy, locales=LOCALES)
    assert loaded == careful(text, taxonomy)


@pytest.mark.parametrize("in_group", [0.05, 0.5])
def test_benchmark_data_is_read_from_events_as_from_the_tree(
    in_group: float, taxonomy: Taxonomy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The synthetic file, every mix of keys in it, reads the same both ways, rules shared."""
    synthetic = _synthetic(monkeypatch)
    text = synthetic.subscriptions_yaml(3000, seed=11, mix=synthetic.Mix(in_group=in_group))
    read = from_events(text, taxonomy)
    assert read is not None and read == careful(text, taxonomy)
    assert len({id(s.rule) for s in read.subscribers}) == len(read.rules())


def test_shipped_sample_is_read_from_events(taxonomy: Taxonomy) -> None:
    """The sample file, comments and all, takes the fast way."""
    text = (REPO / "subscriptions.yaml").read_text(encoding="utf-8")
    assert from_events(text, taxonomy) == careful(text, taxonomy)


def _utf8(path: Path) -> bool:
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # the loader reports it before reading any YAML
        return False
    return True


def test_lists_nested_as_deep_as_libyaml_allows_are_reported(taxonomy: Taxonomy) -> None:
    """Nesting that Python's recursion cannot make into nodes goes to libyaml's composer."""
    nested = "[" * 990 + "]" * 990
    text = f"subscribers:\n  - email: a@example.org\n    countries: {nested}\n"
    with pytest.raises(ValidationFailed) as caught:
        parse_subscriptions(text, path=PATH, taxonomy=taxonomy, locales=LOCALES)
    assert [str(p) for p in caught.value.problems] == [
        "subscriptions.yaml:3:17: expected a country code or a region name, found a list"
    ]


def test_a_duplicate_anchor_is_left_to_the_careful_reading(taxonomy: Taxonomy) -> None:
    """Two sections of nothing with one anchor: libyaml's composer refuses it, so must this."""
    assert from_events("groups: &none\nsubscribers: &none\n", taxonomy) is None


@pytest.mark.parametrize("name", sorted(p.stem for p in BROKEN.glob("*.yaml") if _utf8(p)))
def test_broken_files_read_from_events_have_the_careful_problems(
    name: str, taxonomy: Taxonomy
) -> None:
    """A broken file read from its events has the problems and subscriptions of the tree."""
    text = (BROKEN / f"{name}.yaml").read_text(encoding="utf-8")
    read, problems = events_with_problems(text, taxonomy)
    if read is not None:
        assert (read, problems) == careful_with_problems(text, taxonomy)


# Problems inside entries, which the events' reading finds without the whole tree.
ENTRY_PROBLEMS = {
    "wrong values": """
        subscribers:
          - email: a@example.org
            timezone: Europe/Viena
            countries: [UA, Moldova]
          - email: b@example.org
            timezone: Europe/Viena
            fields_of_work: policing
        """,
    "keys": """
        subscribers:
          - email: a@example.org
            locale: fr
            locale: de
            frequncy: daily
          - name: Nobody
          - [email, a@example.org]
          - email: [b@example.org]
        """,
    "addresses": """
        groups:
          - name: desk
            emails: [a@example.org, not-an-address]
        subscribers:
          - email: A@example.org
          - email: c@example
          - email: ~
        """,
    "nested where a value stands": """
        subscribers:
          - email: a@example.org
            countries: [UA, [MD]]
            fallback_locales: {fr: 1}
            name: [Ana]
        """,
}


@pytest.mark.parametrize("text", ENTRY_PROBLEMS.values(), ids=ENTRY_PROBLEMS.keys())
def test_problems_in_entries_are_found_from_events(text: str, taxonomy: Taxonomy) -> None:
    """Problems inside entries come from the events' reading, as the tree's reading says them."""
    text = textwrap.dedent(text)
    read, problems = events_with_problems(text, taxonomy)
    assert read is not None and problems
    assert (read, problems) == careful_with_problems(text, taxonomy)
