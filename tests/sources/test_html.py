"""The html source: a listing page and article pages like the seed's news item."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import pytest

from publisher.errors import SourceError
from publisher.items import FetchedItem
from publisher.settings import HtmlSourceSettings
from publisher.sources import Source, SourceResult
from publisher.sources._dates import parse_issued_date
from publisher.sources._http import HttpClient
from publisher.sources._pages import decode_html
from publisher.sources.html import HtmlSource
from publisher.taxonomy import Taxonomy
from tests.sources.conftest import FixtureServer
from tests.sources.test_feed import assert_harmless

MakeClient = Callable[..., HttpClient]
WORKSHOP_EN = "/html/en/tashkent-workshop.html"
WORKSHOP_RU = "/html/ru/tashkent-workshop.html"
WORKSHOP_TITLE = (
    "OSCE regional workshop in Central Asia focuses on competency frameworks and training "
    "strategies on combating cybercrime and dealing with electronic evidence"
)


def fetch(
    server: FixtureServer,
    taxonomy: Taxonomy,
    make_client: MakeClient,
    listing: str = "/html/news.html",
    *,
    state: Mapping[str, str] | None = None,
    **options: object,
) -> SourceResult:
    settings = HtmlSourceSettings.model_validate(
        {"name": "osce-news", "kind": "html", "listing_url": server.url(listing), **options}
    )

    async def main() -> SourceResult:
        async with make_client(retries=0) as http:
            source: Source = HtmlSource(settings, taxonomy=taxonomy, http=http)
            return await source.fetch(state or {})

    return asyncio.run(main())


def by_key(result: SourceResult, server: FixtureServer) -> dict[str, FetchedItem]:
    return {item.key.removeprefix(server.base_url): item for item in result.items}


def test_article_and_its_translation_are_one_item(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """The seed's news item and its Russian page become one item keyed by the English URL."""
    result = fetch(server, taxonomy, make_client)
    workshop = by_key(result, server)[WORKSHOP_EN]
    assert workshop.published == datetime(2024, 12, 6, 13, 32, tzinfo=UTC)
    assert workshop.issuer == "transnational-threats-department"
    assert workshop.fields_of_work == ("policing",)
    assert workshop.countries == ("KG", "KZ", "TJ", "TM", "UZ")
    assert workshop.origin == server.url(WORKSHOP_EN)
    english, russian = workshop.translations
    assert (english.lang, english.title) == ("en", WORKSHOP_TITLE)
    assert english.url == server.url(WORKSHOP_EN)
    assert english.summary.startswith("On 5 and 6 December in Tashkent, the OSCE Transnational")
    assert "<blockquote>“Our goal is to enable" in english.body_html
    # Relative links in the body are made absolute against the page.
    assert f'href="{server.base_url}/html/project-co-ordinator-in-uzbekistan.html"' in (
        english.body_html
    )
    assert "Issued on" not in english.body_html  # the metadata block is not the body
    assert russian.lang == "ru"  # <html lang="ru-RU">
    assert russian.title.startswith("Региональный семинар ОБСЕ в Центральной Азии посвящён")
    assert russian.url == server.url(WORKSHOP_RU)
    # Each page is fetched once: the listing's duplicate link (with a fragment), the
    # x-default link and the RSS <link rel="alternate"> are not pages to fetch.
    assert len(server.hits(WORKSHOP_EN)) == 1
    assert len(server.hits(WORKSHOP_RU)) == 1
    assert server.hits("/feeds/rss.xml") == []


def test_key_is_the_english_page_whatever_the_listing_links(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """A listing that links only the Russian page still gives the English URL as key."""
    result = fetch(server, taxonomy, make_client, "/html/news-ru-first.html")
    (item,) = result.items
    assert item.key == server.url(WORKSHOP_EN)
    assert [t.lang for t in item.translations] == ["en", "ru"]


def test_keys_are_stable_between_fetches(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """Fetching twice gives the same keys in the same order."""
    first = fetch(server, taxonomy, make_client)
    second = fetch(server, taxonomy, make_client)
    assert [i.key for i in first.items] == [i.key for i in second.items]
    assert first.items == second.items


def test_page_missing_labels_is_reported_and_others_kept(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """A page without title or date, or a dead link, is a problem line; the rest count."""
    result = fetch(server, taxonomy, make_client)
    assert sorted(by_key(result, server)) == [
        "/html/en/control-chars.html",
        "/html/en/hostile.html",
        WORKSHOP_EN,
    ]
    assert sorted(result.problems) == [
        f"osce-news: {server.url('/html/en/gone.html')}: HTTP 404 Not Found",
        f"osce-news: {server.url('/html/en/no-labels.html')}: missing the title ('h1') "
        "and the 'Issued on' date; skipped",
    ]


def test_hostile_html_is_made_harmless(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """Scripts, frames, event handlers and javascript: links never reach body_html."""
    result = fetch(server, taxonomy, make_client)
    hostile = by_key(result, server)["/html/en/hostile.html"]
    (english,) = hostile.translations
    assert_harmless(english.body_html)
    assert "<p>Before.</p>" in english.body_html
    assert 'src="https://example.org/photo.jpg"' in english.body_html
    assert f'href="{server.url(WORKSHOP_EN)}"' in english.body_html
    assert english.title == "Workshop on election observation"  # the script's text is gone
    assert english.summary == "A lead with markup."
    # A text date, a ";"-separated list with an unknown field, a region and a name.
    assert hostile.published == datetime(2024, 12, 9, 12, 0, tzinfo=UTC)
    assert hostile.issuer == "office-for-democratic-institutions-and-human-rights"
    assert hostile.fields_of_work == ("elections", "human-rights")
    assert hostile.countries == ("AM", "AZ", "GE")


def test_control_characters_give_a_clean_one_line_title(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """CR, LF, tabs and other control characters in a title leave one clean line."""
    result = fetch(server, taxonomy, make_client)
    ragged = by_key(result, server)["/html/en/control-chars.html"]
    (english,) = ragged.translations
    assert english.title.startswith("Ministerial Council meets in Malta")
    assert english.title.isprintable()
    assert english.lang == "en"  # en-GB
    # "Issued on :" and "FIELDS OF WORK" match their labels; "December 10, 2024" is read.
    assert ragged.published == datetime(2024, 12, 10, 12, 0, tzinfo=UTC)
    assert ragged.fields_of_work == ("conflict-prevention-and-resolution",)


def test_windows_1251_pages_are_decoded(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """windows-1251 comes out right from the Content-Type charset or from <meta> alone."""
    result = fetch(server, taxonomy, make_client, "/html/cp1251/news.html", language="ru")
    assert result.problems == ()
    items = by_key(result, server)
    header = items["/html/cp1251/ru-cp1251-header.html"]
    meta = items["/html/cp1251/ru-cp1251-meta.html"]
    assert header.translations[0].title == (
        "Семинар ОБСЕ в Ташкенте: «киберпреступность» и электронные доказательства"
    )
    assert "Съешь же ещё этих мягких французских булок" in header.translations[0].body_html
    assert header.published == datetime(2024, 12, 6, 12, 0, tzinfo=UTC)  # "6 декабря 2024 г."
    assert header.countries == ("UZ",)
    assert meta.translations[0].title == "Совещание в Душанбе — №2, «ёлки» и Ё"
    assert meta.published == datetime(2024, 12, 5, 12, 0, tzinfo=UTC)  # "05.12.2024"


def test_unchanged_listing_is_not_modified(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """The listing's ETag comes back; a 304 on it skips the articles altogether."""
    first = fetch(server, taxonomy, make_client)
    assert set(first.state) == {"etag", "last_modified"}
    second = fetch(server, taxonomy, make_client, state=first.state)
    assert second.not_modified and second.items == ()
    assert server.hits("/html/news.html")[1]["If-None-Match"] == first.state["etag"]
    assert len(server.hits(WORKSHOP_EN)) == 1


def test_listing_failure_fails_the_source(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """A listing that cannot be fetched is a SourceError naming source and URL."""
    expected = rf"osce-news: {re.escape(server.url('/status/500'))}: HTTP 500"
    with pytest.raises(SourceError, match=expected):
        fetch(server, taxonomy, make_client, "/status/500")


def test_listing_without_links_is_a_problem(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """Selectors that match nothing are reported, not silently empty."""
    result = fetch(server, taxonomy, make_client, selectors={"article_links": ".nothing a"})
    assert result.items == ()
    assert "no article links match the selector '.nothing a'" in result.problems[0]


def test_max_articles_bounds_the_listing(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """Only the first max_articles links of the listing are followed."""
    result = fetch(server, taxonomy, make_client, max_articles=1)
    assert [item.key for item in result.items] == [server.url(WORKSHOP_EN)]
    assert server.hits("/html/en/hostile.html") == []


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("2024-12-06", "en", datetime(2024, 12, 6, 12, tzinfo=UTC)),
        ("2024-12-06T14:32:00+01:00", "en", datetime(2024, 12, 6, 13, 32, tzinfo=UTC)),
        ("2024-12-06T14:32:00Z", "en", datetime(2024, 12, 6, 14, 32, tzinfo=UTC)),
        ("2024-12-06 14:32", "en", datetime(2024, 12, 6, 14, 32, tzinfo=UTC)),
        ("6 December 2024", "en", datetime(2024, 12, 6, 12, tzinfo=UTC)),
        ("Issued on 6 Dec. 2024", "en", datetime(2024, 12, 6, 12, tzinfo=UTC)),
        ("December 6, 2024", "en", datetime(2024, 12, 6, 12, tzinfo=UTC)),
        ("December 6th, 2024", "en", datetime(2024, 12, 6, 12, tzinfo=UTC)),
        ("6 декабря 2024 г.", "ru", datetime(2024, 12, 6, 12, tzinfo=UTC)),
        ("6. Dezember 2024", "de", datetime(2024, 12, 6, 12, tzinfo=UTC)),
        ("6 décembre 2024", "fr", datetime(2024, 12, 6, 12, tzinfo=UTC)),
        ("06.12.2024", "en", datetime(2024, 12, 6, 12, tzinfo=UTC)),
        ("31 February 2024", "en", None),
        ("6 Frimaire 2024", "en", None),
        ("yesterday", "en", None),
    ],
)
def test_parse_issued_date(text: str, lang: str, expected: datetime | None) -> None:
    """The date forms the html source accepts, and the ones it refuses."""
    assert parse_issued_date(text, lang) == expected


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        ("Привет".encode("windows-1251"), "text/html; charset=windows-1251", "Привет"),
        ("Привет".encode("koi8-r"), 'text/html; charset="KOI8-R"', "Привет"),
        (b'<meta charset="windows-1251">' + "Ё".encode("cp1251"), "text/html", "Ё"),
        ("Ёж".encode(), "text/html; charset=utf-8", "Ёж"),
        (b"\xef\xbb\xbf" + "Ёж".encode(), "text/html; charset=windows-1251", "Ёж"),  # BOM wins
        (b"caf\xe9", "text/html; charset=iso-8859-1", "café"),
        (b"\x93quoted\x94", "text/html; charset=iso-8859-1", "“quoted”"),  # as browsers do
        (b"bad \xff byte", None, "bad \ufffd byte"),
    ],
)
def test_decode_html(content: bytes, content_type: str | None, expected: str) -> None:
    """Bytes are decoded by BOM, HTTP charset, <meta charset>, else UTF-8 with replacement."""
    assert decode_html(content, content_type).endswith(expected)
