"""Every locale renders its emails, unsubscribe pages and feeds without English words of ours.

The haystack is the visible text (HTML tags dropped) with the items' own text removed:
an item that exists only in English may stay English, marked with its language. The
needles are the English catalog's messages, cut at their placeholders, that the
locale's catalog translates differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import Engine
from starlette.testclient import TestClient

from publisher.feeds import FeedBuilder, FeedFormat, FeedSpec
from publisher.feeds.formats import write
from publisher.rendering import EmailRenderer
from publisher.resources import bundled
from publisher.settings import Settings
from publisher.store.items import StoredItem
from publisher.taxonomy import load_taxonomy
from publisher.unsubscribe import make_token
from publisher.web import create_app
from tests.rendering.conftest import make_rule

OTHERS = [locale for locale in Settings().locales if locale != "en"]
PERIOD = (datetime(2024, 12, 5, 3, 0, tzinfo=UTC), datetime(2024, 12, 6, 3, 0, tzinfo=UTC))
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|<[^>]+>")
_TAG = re.compile(r"<[^>]+>")
_ADDRESS = re.compile(r"\S*(?:://|tag:|@)\S*")


def _messages(lang: str) -> dict[str, str]:
    path = bundled("locales") / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    out = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        value = message.string[-1] if isinstance(message.string, tuple) else message.string
        out[key] = value
    return out


def _needles(locale: str) -> set[str]:
    """English fragments of ours the locale must not show."""
    english, translated = _messages("en"), _messages(locale)
    needles = set()
    for key, text in english.items():
        theirs = translated.get(key, "")
        for fragment in _PLACEHOLDER.split(text):
            fragment = fragment.strip(" .,:;—-()")
            # Short fragments ("OSCE", "at") are shared by many languages.
            if len(fragment) >= 5 and fragment not in theirs:
                needles.add(fragment)
    return needles


def _visible(html: str, items: list[StoredItem]) -> str:
    text = unescape(_TAG.sub(" ", html))
    for item in items:
        for translation in item.translations.values():
            for own in (
                translation.title,
                translation.summary,
                _TAG.sub("", translation.body_html),
            ):
                text = text.replace(own, " ")
    text = _ADDRESS.sub(" ", text)  # URLs and tag: ids are not words
    return re.sub(r"\s+", " ", text)


def _leftovers(locale: str, html: str, items: list[StoredItem]) -> list[str]:
    visible = _visible(html, items)
    return sorted(
        n for n in _needles(locale) if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", visible)
    )


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        base_url="https://news.example.org",
        secret_key="no-english-left",
        sender={"from": "OSCE News <news@example.org>"},
        subscriptions=tmp_path_factory.mktemp("subs") / "subscriptions.yaml",
    )


@pytest.mark.parametrize("locale", OTHERS)
def test_emails_have_no_english_of_ours(
    locale: str, renderer: EmailRenderer, workshop: StoredItem, english_only: StoredItem
) -> None:
    """The alert and the digest (HTML, text, subject) are all in the reader's language."""
    items = [workshop, english_only]
    rule = make_rule(locale)
    alert = renderer.render_alert(english_only, rule=rule, default_locale="en")
    digest = renderer.render_digest(
        items, rule=rule, default_locale="en", period_start=PERIOD[0], period_end=PERIOD[1]
    )
    for email in (alert, digest):
        for part in (email.subject, email.html, email.text):
            assert _leftovers(locale, part, items) == [], part[:300]


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine)) as client:
        yield client


@pytest.mark.parametrize("locale", OTHERS)
def test_unsubscribe_pages_have_no_english_of_ours(
    locale: str, client: TestClient, settings: Settings
) -> None:
    """The confirmation, done, invalid-link and not-found pages speak the locale."""
    token = make_token("reader@example.org", secret_key=settings.secret_key)
    language = {"Accept-Language": locale}
    pages = [
        client.get(f"/u/{token}", headers=language),
        client.post(f"/u/{token}", headers=language),
        client.get("/u/not-a-token", headers=language),
        client.get("/nothing-here", headers=language),
    ]
    for page in pages:
        assert f'lang="{locale}"' in page.text
        assert _leftovers(locale, page.text, []) == [], page.text[:300]


@pytest.mark.parametrize("locale", OTHERS)
def test_feeds_have_no_english_of_ours(
    locale: str, settings: Settings, workshop: StoredItem, english_only: StoredItem
) -> None:
    """Feed titles, descriptions, categories and issuers are in the feed's language."""
    items = [workshop, english_only]
    builder = FeedBuilder(settings, taxonomy=load_taxonomy())
    for spec in (FeedSpec(), FeedSpec(fields=("policing",), countries=("UZ", "KZ"))):
        for fmt in FeedFormat:
            data = write(builder.feed(locale, spec, fmt, items), fmt).decode()
            assert _leftovers(locale, unescape(data), items) == [], (spec, fmt)


def test_the_check_finds_english_when_it_is_there(
    renderer: EmailRenderer, workshop: StoredItem
) -> None:
    """The needles are real: an English email checked as German shows its English words."""
    email = renderer.render_alert(workshop, rule=make_rule("en"), default_locale="en")
    assert len(_needles("de")) > 80
    assert {"Unsubscribe", "Policing"} <= set(_leftovers("de", email.html, [workshop]))


def test_only_english_items_are_marked_with_their_language(
    renderer: EmailRenderer, english_only: StoredItem
) -> None:
    """An item that exists only in English reaches a German reader in English, marked."""
    email = renderer.render_alert(english_only, rule=make_rule("de"), default_locale="en")
    assert 'lang="en"' in email.html
