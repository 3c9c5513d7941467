"""The Jinja2 environments: strict about names, escaping, one per locale, locale-bound filters."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2
import pytest
from markupsafe import Markup

from publisher.rendering import EmailRenderer, Environments
from publisher.resources import bundled
from publisher.store.items import StoredItem
from publisher.taxonomy import load_taxonomy
from tests.rendering.conftest import make_rule

START = datetime(2024, 12, 5, 3, 0, tzinfo=UTC)
END = datetime(2024, 12, 6, 3, 0, tzinfo=UTC)


def _renderer_with(tmp_path: Path, name: str, old: str, new: str) -> EmailRenderer:
    templates = tmp_path / "templates"
    shutil.copytree(bundled("templates"), templates)
    path = templates / "email" / name
    source = path.read_text(encoding="utf-8")
    assert old in source
    path.write_text(source.replace(old, new), encoding="utf-8")
    return EmailRenderer(
        taxonomy=load_taxonomy(),
        base_url="https://news.example.org",
        organisation="OSCE News",
        templates=templates,
    )


def test_template_typo_raises(tmp_path: Path, workshop: StoredItem) -> None:
    """StrictUndefined: a misspelt name in a template is an error, not an empty string."""
    renderer = _renderer_with(tmp_path, "_item.html", "item.title", "item.titel")
    with pytest.raises(jinja2.UndefinedError, match="titel"):
        renderer.render_alert(workshop, rule=make_rule(), default_locale="en")


def test_layout_typo_raises(tmp_path: Path, workshop: StoredItem) -> None:
    """A misspelt top-level variable raises as well."""
    renderer = _renderer_with(tmp_path, "_layout.txt", "organisation }}", "organization }}")
    with pytest.raises(jinja2.UndefinedError, match="organization"):
        renderer.render_alert(workshop, rule=make_rule(), default_locale="en")


def test_one_environment_per_locale() -> None:
    """Environments are built once per locale and reused."""
    environments = Environments(taxonomy=load_taxonomy())
    assert environments.get("ru") is environments.get("ru")
    assert environments.get("ru") is not environments.get("de")
    env = environments.get("ru")
    assert env.undefined is jinja2.StrictUndefined
    assert "jinja2.ext.InternationalizationExtension" in env.extensions


def test_filters_are_bound_to_the_locale() -> None:
    """Labels, countries and lists come out in the environment's language."""
    env = Environments(taxonomy=load_taxonomy()).get("de")
    template = env.from_string(
        "{{ ['policing', 'elections']|fields_of_work }} | {{ ['RU', 'DE', 'VA']|countries }}"
        " | {{ 'transnational-threats-department'|issuer }} | {{ 'en'|language_name }}"
    )
    assert template.render() == (
        "Polizeiarbeit und Wahlen | Russische Föderation, Deutschland und Heiliger Stuhl"
        " | OSZE-Sekretariat, Abteilung Grenzüberschreitende Bedrohungen | Englisch"
    )


def test_autoescape_in_html_not_in_text() -> None:
    """HTML and string templates escape; ``.txt`` templates are text and do not."""
    env = Environments(taxonomy=load_taxonomy()).get("en")
    assert env.from_string("{{ x }}").render(x="<a>&") == "&lt;a&gt;&amp;"
    assert env.autoescape("email/alert.html") is True  # type: ignore[operator]
    assert env.autoescape("email/alert.txt") is False  # type: ignore[operator]


def test_wordwrap_remembers_its_answers_and_keeps_markup_apart() -> None:
    """The cached wordwrap gives Jinja's own answers; a Markup and an equal str are
    wrapped each as Jinja would, neither taking the other's cached result."""
    env = Environments(taxonomy=load_taxonomy()).get("en")
    plain = jinja2.Environment(keep_trailing_newline=True)
    text = "Thirty investigators & prosecutors practised collecting evidence. " * 3
    for value in (text, Markup(text), text):
        for width, long_words in ((30, False), (72, False), (10, True)):
            ours = env.filters["wordwrap"](value, width, break_long_words=long_words)
            theirs = jinja2.filters.do_wordwrap(plain, value, width, long_words)
            assert ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        # The zone shown as it is: the block is no longer the same in every zone.
        (
            "_item.html",
            "{{ item.published|moment(tz) }}",
            "{{ item.published|moment(tz) }} {{ tz }}",
        ),
        # A moment changed, not only shown.
        ("_item.txt", "{{ item.published|moment(tz) }}", "{{ item.published|moment(tz)|upper }}"),
        # CSS that styles an item by its neighbour.
        ("_layout.html", ".summary {", ".item + .item { border-top: 0; }\n.summary {"),
    ],
)
def test_templates_that_cannot_be_assembled_are_rendered_whole(
    tmp_path: Path,
    workshop: StoredItem,
    caplog: pytest.LogCaptureFixture,
    name: str,
    old: str,
    new: str,
) -> None:
    """A template that uses a moment or a block other than by showing it, or CSS that
    selects by siblings, gets what rendering whole gives, for every zone, with a warning."""
    changed = _renderer_with(tmp_path, name, old, new)
    whole = EmailRenderer(
        taxonomy=load_taxonomy(),
        base_url="https://news.example.org",
        organisation="OSCE News",
        templates=tmp_path / "templates",
        assemble=False,
    )
    second = replace(workshop, id="second", published=workshop.published - timedelta(hours=30))
    for zone in ("Asia/Tashkent", "America/New_York", "Asia/Kathmandu"):
        rule = make_rule("en", timezone=zone)
        for renderer in (changed, whole):
            renderer.render_alert(workshop, rule=rule, default_locale="en")
        assert changed.render_digest(
            [workshop, second], rule=rule, default_locale="en", period_start=START, period_end=END
        ) == whole.render_digest(
            [workshop, second], rule=rule, default_locale="en", period_start=START, period_end=END
        )
    assert "is rendered whole" in caplog.text
    assert changed._assembles[("digest", "en")] is False
