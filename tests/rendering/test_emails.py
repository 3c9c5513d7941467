"""Alerts and digests: subjects, escaping, direction, fallbacks, markers, caching."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from babel.dates import get_month_names

from publisher.rendering import UNSUBSCRIBE_URL_MARK, EmailRenderer
from publisher.rendering.emails import Shared
from publisher.store.items import StoredItem
from publisher.subscriptions.model import Frequency
from tests.rendering.conftest import PUBLISHED, make_item, make_rule, translation

START = datetime(2024, 12, 5, 3, 0, tzinfo=UTC)
END = datetime(2024, 12, 6, 3, 0, tzinfo=UTC)


def _items(count: int, fields: tuple[str, ...] = ("policing",)) -> list[StoredItem]:
    return [
        make_item(f"item-{n}", published=PUBLISHED - timedelta(hours=n), fields_of_work=fields)
        for n in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "subject"),
    [
        (1, "1 новая публикация: Полицейская деятельность"),
        (2, "2 новые публикации: Полицейская деятельность"),
        (5, "5 новых публикаций: Полицейская деятельность"),
        (11, "11 новых публикаций: Полицейская деятельность"),
        (21, "21 новая публикация: Полицейская деятельность"),
    ],
)
def test_russian_digest_subject_plural_forms(
    count: int, subject: str, renderer: EmailRenderer
) -> None:
    """A Russian digest subject takes the right one of the three plural forms."""
    email = renderer.render_digest(
        _items(count), rule=make_rule("ru"), default_locale="en", period_start=START, period_end=END
    )
    assert email.subject == subject


@pytest.mark.parametrize(
    ("count", "subject"),
    [
        (0, "0 новых публикаций"),
        (1, "1 новая публикация"),
        (2, "2 новые публикации"),
        (5, "5 новых публикаций"),
        (11, "11 новых публикаций"),
        (21, "21 новая публикация"),
    ],
)
def test_russian_subject_without_fields(count: int, subject: str, renderer: EmailRenderer) -> None:
    """Without fields of work the subject is the count alone, in the right plural form."""
    assert renderer.digest_subject(count, [], locale="ru") == subject


def test_english_digest_subject_names_the_commonest_fields(renderer: EmailRenderer) -> None:
    """The subject names the rule's fields the items carry, commonest first."""
    items = [
        *_items(2, ("elections", "policing")),
        make_item("x", fields_of_work=("elections",)),
    ]
    rule = make_rule("en", fields_of_work=frozenset())
    email = renderer.render_digest(
        items, rule=rule, default_locale="en", period_start=START, period_end=END
    )
    assert email.subject == "3 new items: Elections and Policing"


def test_empty_digest_is_refused(renderer: EmailRenderer) -> None:
    """An empty digest is never rendered (so never sent)."""
    with pytest.raises(ValueError, match="at least one item"):
        renderer.render_digest(
            [], rule=make_rule(), default_locale="en", period_start=START, period_end=END
        )


def test_a_right_to_left_locale_without_a_catalog_keeps_its_direction_and_dates(
    renderer: EmailRenderer, workshop: StoredItem
) -> None:
    """``he`` has no catalog: words fall back to English, direction and dates stay Hebrew."""
    email = renderer.render_alert(workshop, rule=make_rule("he"), default_locale="en")
    assert '<html lang="he" dir="rtl"' in email.html
    assert renderer.catalog("he").fallback
    assert renderer.catalog("he").language == "en"
    assert "Unsubscribe" in email.html
    assert get_month_names("abbreviated", locale="he")[12] in email.html  # CLDR: Hebrew dates
    assert email.locale == "he"


def test_arabic_is_right_to_left_in_arabic(renderer: EmailRenderer, workshop: StoredItem) -> None:
    """``ar`` has its catalog: Arabic words, right to left, Arabic dates."""
    email = renderer.render_alert(workshop, rule=make_rule("ar"), default_locale="en")
    assert '<html lang="ar" dir="rtl"' in email.html
    assert not renderer.catalog("ar").fallback
    assert "Unsubscribe" not in email.html
    assert "6 ديسمبر 2024، 2:30 م" in email.html
    assert email.locale == "ar"


def test_title_markup_is_escaped(renderer: EmailRenderer) -> None:
    """A title with ``<script>`` never reaches the HTML part unescaped."""
    item = make_item(
        "xss",
        texts=(translation("en", 'Evil <script>alert("x")</script> & co', "<b>hi</b>", None),),
    )
    alert = renderer.render_alert(item, rule=make_rule(), default_locale="en")
    digest = renderer.render_digest(
        [item], rule=make_rule(), default_locale="en", period_start=START, period_end=END
    )
    for html in (alert.html, digest.html):
        assert "<script>" not in html
        assert "<b>hi" not in html
        assert "Evil &lt;script&gt;" in html
    # The text part is text: a title is shown as written, not entity-encoded.
    assert 'Evil <script>alert("x")</script> & co' in alert.text
    assert alert.subject == 'Evil <script>alert("x")</script> & co'


def test_fallback_language_item_is_marked(
    renderer: EmailRenderer, english_only: StoredItem
) -> None:
    """An item shown in a fallback language carries its ``lang`` and a note in the reader's."""
    email = renderer.render_alert(english_only, rule=make_rule("ru"), default_locale="en")
    block = re.search(r'<table class="item"[^>]*>', email.html)
    assert block is not None
    assert ' lang="en"' in block.group(0)
    assert ' dir="ltr"' in block.group(0)
    assert "(язык: английский)" in email.html
    assert "(язык: английский)" in email.text
    german = renderer.render_alert(english_only, rule=make_rule("de"), default_locale="en")
    assert "(auf Englisch)" in german.html


def test_own_language_item_has_no_note(renderer: EmailRenderer, workshop: StoredItem) -> None:
    """A reader's own language needs no note and no ``lang`` on the block."""
    email = renderer.render_alert(workshop, rule=make_rule("ru"), default_locale="en")
    assert "язык:" not in email.html
    assert 'lang="en"' not in email.html
    assert email.subject.startswith("Киберпреступность")


def test_unsubscribe_marker_once_per_part(renderer: EmailRenderer) -> None:
    """Each part has the unsubscribe marker exactly once; item text cannot forge one."""
    item = make_item(
        "forged", texts=(translation("en", f"Click {UNSUBSCRIBE_URL_MARK}", "x", None),)
    )
    email = renderer.render_alert(item, rule=make_rule(), default_locale="en")
    assert email.html.count(UNSUBSCRIBE_URL_MARK) == 1
    assert email.text.count(UNSUBSCRIBE_URL_MARK) == 1
    assert f'href="{UNSUBSCRIBE_URL_MARK}"' in email.html
    assert UNSUBSCRIBE_URL_MARK not in email.subject


def test_personalized_fills_the_marker(renderer: EmailRenderer, workshop: StoredItem) -> None:
    """Filling the marker puts the URL in both parts, escaped for HTML."""
    email = renderer.render_alert(workshop, rule=make_rule(), default_locale="en")
    url = "https://news.example.org/u/abc?x=1&y=2"
    personal = email.personalized(unsubscribe_url=url)
    assert 'href="https://news.example.org/u/abc?x=1&amp;y=2"' in personal.html
    assert f"Unsubscribe: {url}\n" in personal.text
    assert UNSUBSCRIBE_URL_MARK not in personal.html + personal.text


def test_text_part_is_written_as_text(renderer: EmailRenderer, workshop: StoredItem) -> None:
    """The plain-text part has no markup: title, date, link, summary and separators."""
    digest = renderer.render_digest(
        [workshop], rule=make_rule(), default_locale="en", period_start=START, period_end=END
    )
    assert "<" not in digest.text
    assert "&amp;" not in digest.text
    lines = digest.text.splitlines()
    assert "-" * 72 in lines
    assert "https://www.example.org/en/news/tashkent-workshop" in lines
    assert "Dec 6, 2024, 2:30\u202fPM · Project Co-ordinator in Uzbekistan" in lines
    assert "-- " in lines  # RFC 3676 signature separator before the footer
    assert all(len(line) <= 72 for line in lines if not line.startswith("http"))


def test_html_is_inlined_responsive_and_dark_mode_ready(
    renderer: EmailRenderer, workshop: StoredItem
) -> None:
    """Styles are inlined, the layout is 600px fluid and a dark-mode ``<style>`` stays."""
    html = renderer.render_alert(workshop, rule=make_rule(), default_locale="en").html
    assert 'style="width: 100%;max-width: 600px;' in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert '<td class="item-cell" style="padding: 16px 0;">' in html


def test_footer_describes_the_rule(renderer: EmailRenderer, workshop: StoredItem) -> None:
    """The footer says in words what the subscriber follows and when."""
    # Compared with runs of white space (line breaks, U+202F before "AM") made one space.
    weekly = make_rule(
        "en", frequency=Frequency.WEEKLY, weekday=0, exclude_countries=frozenset({"RU"})
    )
    text = renderer.render_alert(workshop, rule=weekly, default_locale="en").text
    flat = " ".join(text.split())
    assert (
        "You follow: Cyber/ICT Security and Policing — Kazakhstan, Kyrgyzstan, Tajikistan, "
        "Turkmenistan, and Uzbekistan — weekly on Monday at 8:00 AM (Asia/Tashkent)."
    ) in flat
    assert "Except: Russian Federation." in flat
    everything = make_rule(
        "ru",
        fields_of_work=frozenset(),
        countries=frozenset(),
        countries_as_written=(),
        frequency=Frequency.IMMEDIATE,
    )
    text = renderer.render_alert(workshop, rule=everything, default_locale="en").text
    assert (
        "Ваша подписка: все направления работы — все страны — сразу после публикации."
        in " ".join(text.split())
    )


def test_long_country_lists_are_shortened(renderer: EmailRenderer, workshop: StoredItem) -> None:
    """A rule naming many countries is summed up with a localized "and N more"."""
    codes = ("AL", "AT", "BE", "CA", "DE", "FR", "GB", "IT", "NL", "US")
    rule = make_rule("ru", countries=frozenset(codes), countries_as_written=codes)
    text = " ".join(renderer.render_alert(workshop, rule=rule, default_locale="en").text.split())
    assert "Нидерланды и ещё 2 —" not in text  # NL is the 9th: cut before it
    assert "Италия и ещё 2 —" in text


def test_item_blocks_are_rendered_once_for_every_zone(
    renderer: EmailRenderer, workshop: StoredItem
) -> None:
    """Rules of one locale share the item's block whatever their zone, each zone showing
    its own moments in it; an edited item is rendered afresh."""
    first = make_rule("fr")
    second = make_rule("fr", fields_of_work=frozenset({"policing"}), timezone="Europe/Paris")
    block_a = renderer._zone_free_block(workshop, rule=first, default_locale="en")
    block_b = renderer._zone_free_block(workshop, rule=second, default_locale="en")
    assert block_a is block_b
    edited = replace(workshop, changed_at=workshop.changed_at + timedelta(minutes=1))
    assert renderer._zone_free_block(edited, rule=first, default_locale="en") is not block_a
    for rule, moment in ((first, "6 déc. 2024, 14:30"), (second, "6 déc. 2024, 10:30")):
        email = renderer.render_alert(workshop, rule=rule, default_locale="en")
        assert moment in email.text
        assert moment.replace("\u00a0", "&nbsp;") in email.html


def test_an_assembled_digest_keeps_its_item_blocks_apart(renderer: EmailRenderer) -> None:
    """A digest's parts come as pieces, plain and Shared in turn, that join into the
    parts; the items' long texts are Shared, and the same objects in every digest that
    shows them in that zone, so the outbox stores them once."""
    summary = "Thirty investigators and prosecutors practised handling e-evidence. " * 5
    items = [
        make_item(f"shared-{n}", texts=(translation("en", f"Item {n}", summary, None),))
        for n in range(3)
    ]
    period = {"period_start": PUBLISHED - timedelta(days=1), "period_end": PUBLISHED}
    one = renderer.render_digest(items, rule=make_rule(), default_locale="en", **period)
    two = renderer.render_digest(
        items[1:], rule=make_rule(countries=frozenset({"UZ"})), default_locale="en", **period
    )
    for email in (one, two):
        for pieces, whole in ((email.html_pieces, email.html), (email.text_pieces, email.text)):
            assert pieces is not None and len(pieces) % 2 == 1
            assert "".join(pieces) == whole
            assert all(type(p) is Shared for p in pieces[1::2])
            assert not any(type(p) is Shared for p in pieces[0::2])
            assert any("Thirty investigators" in p for p in pieces[1::2])
    assert one.html_pieces is not None and two.html_pieces is not None
    assert {id(p) for p in two.html_pieces[1::2]} < {id(p) for p in one.html_pieces[1::2]}
