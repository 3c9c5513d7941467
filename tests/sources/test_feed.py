"""The feed source: RSS 2.0 and Atom, over a real local HTTP server or from a file."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest

from publisher.errors import SourceError
from publisher.items import FetchedItem
from publisher.settings import FeedSourceSettings
from publisher.sources import Source, SourceResult
from publisher.sources._http import HttpClient
from publisher.sources._language import primary_language
from publisher.sources.feed import FeedSource
from publisher.taxonomy import Taxonomy
from tests.sources.conftest import FIXTURES, FixtureServer

MakeClient = Callable[..., HttpClient]
CENTRAL_ASIA = ("KG", "KZ", "TJ", "TM", "UZ")


def fetch(
    url: str,
    taxonomy: Taxonomy,
    make_client: MakeClient | None = None,
    *,
    state: Mapping[str, str] | None = None,
    **options: object,
) -> SourceResult:
    settings = FeedSourceSettings.model_validate(
        {"name": "newsroom", "kind": "feed", "url": url, **options}
    )

    async def main() -> SourceResult:
        if make_client is None:
            return await FeedSource(settings, taxonomy=taxonomy, http=None).fetch(state or {})
        async with make_client(retries=1) as http:
            source: Source = FeedSource(settings, taxonomy=taxonomy, http=http)
            return await source.fetch(state or {})

    return asyncio.run(main())


def by_key(result: SourceResult) -> dict[str, FetchedItem]:
    return {item.key: item for item in result.items}


def test_rss_entries_become_items(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """RSS items give keys, UTC dates, clean titles, sanitized bodies, tags and issuer."""
    result = fetch(
        server.url("/feeds/rss.xml"),
        taxonomy,
        make_client,
        categories={"Cybercrime": "cyber-ict-security"},
    )
    items = by_key(result)
    workshop = items["osce-news-581234"]
    assert workshop.published == datetime(2024, 12, 6, 13, 32, tzinfo=UTC)
    assert workshop.updated is None
    assert workshop.issuer == "transnational-threats-department"  # from dc:creator
    # "Underwater basket weaving" is nobody's category: ignored, not an error.
    assert workshop.fields_of_work == ("policing", "cyber-ict-security")
    assert workshop.countries == CENTRAL_ASIA  # the "Central Asia" region, expanded
    (english,) = workshop.translations
    assert english.lang == "en"  # <language>en-us</language>
    assert english.title == (
        "OSCE regional workshop in Central Asia focuses on competency frameworks "
        "and training strategies"
    )
    assert english.summary.startswith("On 5 and 6 December in Tashkent, the OSCE Transnational")
    assert english.url == "https://news.example.org/news/581234"
    assert "<p>The 25 senior law enforcement representatives took part.</p>" in english.body_html
    assert_harmless(english.body_html)

    georgia = items["https://news.example.org/news/581300"]  # no guid: the link is the key
    assert (georgia.fields_of_work, georgia.countries) == (("elections",), ("GE",))
    assert any(key.startswith("sha256:") for key in items)  # neither guid nor link
    assert len(items) == 3
    assert result.problems == (
        f"newsroom: {server.url('/feeds/rss.xml')}: entry 'osce-news-undated': "
        "no published or updated date; skipped",
    )


def test_atom_groups_translations_by_id_and_by_hreflang(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """Atom entries sharing an id, or linking each other by hreflang, are one item."""
    result = fetch(server.url("/feeds/atom.xml"), taxonomy, make_client)
    assert result.problems == ()
    workshop, media = result.items
    assert workshop.key == "urn:example:osce:news:581234"
    assert [t.lang for t in workshop.translations] == ["en", "ru"]
    assert workshop.translations[1].title == "Региональный семинар ОБСЕ в Центральной Азии"
    assert workshop.translations[1].url == "https://news.example.org/ru/news/581234"
    assert workshop.translations[1].body_html == (
        "<p>5 и 6 декабря в Ташкенте ОБСЕ провела региональный семинар.</p>"
        "<p>Участвовали 25 представителей.</p>"
    )
    assert workshop.published == datetime(2024, 12, 6, 13, 32, tzinfo=UTC)
    assert workshop.updated == datetime(2024, 12, 9, 8, 0, tzinfo=UTC)
    assert workshop.issuer == "transnational-threats-department"
    assert workshop.fields_of_work == ("policing",)
    assert workshop.countries == CENTRAL_ASIA  # codes, a name, a label

    # Two ids, linked by <link rel="alternate" hreflang>: keyed by the English entry.
    assert media.key == "urn:example:osce:news:581400"
    assert [t.lang for t in media.translations] == ["en", "fr"]
    assert media.published == datetime(2024, 11, 20, 10, 0, tzinfo=UTC)  # updated only
    assert media.issuer == "representative-on-freedom-of-the-media"
    assert (media.fields_of_work, media.countries) == (("media-freedom-and-development",), ("AT",))


def test_etag_round_trip_gives_not_modified(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """The state keeps ETag and Last-Modified; sent back, the server's 304 is not_modified."""
    url = server.url("/feeds/atom.xml")
    first = fetch(url, taxonomy, make_client)
    assert set(first.state) == {"etag", "last_modified"}
    second = fetch(url, taxonomy, make_client, state=first.state)
    assert second.not_modified
    assert second.items == ()
    assert second.state == first.state
    assert server.hits("/feeds/atom.xml")[1]["If-None-Match"] == first.state["etag"]


def test_keys_are_stable_between_fetches(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """Fetching the same feed twice gives the same keys, hashed ones included."""
    keys = [
        [item.key for item in fetch(server.url(path), taxonomy, make_client).items]
        for path in ("/feeds/rss.xml", "/feeds/rss.xml", "/feeds/atom.xml", "/feeds/atom.xml")
    ]
    assert keys[0] == keys[1] and keys[2] == keys[3]


def test_malformed_feed_without_entries_raises(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """A document with no readable entry is a SourceError with the parser's message."""
    url = server.url("/feeds/broken.xml")
    expected = f"newsroom: {re.escape(url)}: not a readable feed: .*not well-formed"
    with pytest.raises(SourceError, match=expected):
        fetch(url, taxonomy, make_client)


def test_malformed_feed_keeps_entries_it_could_read(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """A feed broken after some entries keeps them and reports the breakage."""
    url = server.url("/feeds/partly-broken.xml")
    result = fetch(url, taxonomy, make_client)
    assert [item.key for item in result.items] == ["osce-news-good"]
    assert result.problems[0].startswith(f"newsroom: {url}: the feed is malformed (")


def test_server_error_is_a_source_error(
    server: FixtureServer, taxonomy: Taxonomy, make_client: MakeClient
) -> None:
    """A feed URL answering 500 fails the source, after the client's retries."""
    with pytest.raises(SourceError, match="HTTP 500"):
        fetch(server.url("/status/500"), taxonomy, make_client)
    assert len(server.hits("/status/500")) == 2


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_local_file_and_its_mtime(tmp_path: Path, taxonomy: Taxonomy, as_url: bool) -> None:
    """A local feed is read from a path or file:// URL; an unchanged mtime is not_modified."""
    path = tmp_path / "atom feed.xml"
    shutil.copy(FIXTURES / "feeds" / "atom.xml", path)
    url = path.as_uri() if as_url else str(path)
    first = fetch(url, taxonomy)
    assert len(first.items) == 2
    assert fetch(url, taxonomy, state=first.state).not_modified
    os.utime(path, ns=(0, 10**18))
    assert len(fetch(url, taxonomy, state=first.state).items) == 2


def test_missing_local_file_raises(tmp_path: Path, taxonomy: Taxonomy) -> None:
    """A feed file that is not there is a SourceError naming it."""
    with pytest.raises(SourceError, match=r"newsroom: .*missing\.xml: cannot read the feed"):
        fetch(str(tmp_path / "missing.xml"), taxonomy)


def test_language_falls_back_to_the_setting(tmp_path: Path, taxonomy: Taxonomy) -> None:
    """A feed that names no language takes the setting's; a region subtag is dropped."""
    text = (FIXTURES / "feeds" / "partly-broken.xml").read_text(encoding="utf-8")
    path = tmp_path / "feed.xml"
    path.write_text(text.split("  <item>\n    <title>A broken")[0] + "</channel></rss>")
    result = fetch(str(path), taxonomy, language="de_AT")
    assert result.problems == ()
    assert [t.lang for t in result.items[0].translations] == ["de"]


def test_english_translation_leads_whatever_the_order(tmp_path: Path, taxonomy: Taxonomy) -> None:
    """With the Russian entry first, the item still takes the English entry's dates."""
    path = tmp_path / "feed.xml"
    path.write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>t</title><id>f</id>'
        "<updated>2024-12-07T00:00:00Z</updated>"
        '<entry xml:lang="ru"><id>urn:x</id><title>Привет</title>'
        "<published>2024-12-07T00:00:00Z</published></entry>"
        "<entry><id>urn:x</id><title>Hello</title>"
        "<published>2024-12-06T00:00:00Z</published></entry></feed>",
        encoding="utf-8",
    )
    (item,) = fetch(str(path), taxonomy).items
    assert [t.lang for t in item.translations] == ["en", "ru"]
    assert item.published == datetime(2024, 12, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("en", "en"), ("en-US", "en"), ("pt_BR", "pt"), ("RU", "ru"), ("x-default", None), ("", None)],
)
def test_primary_language(tag: str, expected: str | None) -> None:
    """Language tags are reduced to a primary subtag Babel knows."""
    assert primary_language(tag) == expected


def assert_harmless(body_html: str) -> None:
    """Nothing in the HTML can run: no script-like elements, handlers or script URLs."""
    root = lxml.html.fragment_fromstring(body_html or "<p></p>", create_parent="div")
    assert not root.xpath("//script | //iframe | //object | //embed | //style | //svg | //form")
    for element in root.iter():
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            assert "javascript:" not in value.lower().replace(" ", ""), (element.tag, name)
            assert not value.strip().lower().startswith("data:"), (element.tag, name)
