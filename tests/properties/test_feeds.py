"""Feeds of hostile items (issue "Reliability and security", part 4).

Whatever an item's texts hold (control characters, lone surrogates, ``<script>``, CDATA
end markers ``]]>``, comment dashes ``--``, megabyte bodies), its entry is written in
all three formats: Atom that feedparser reads without complaint and that RFC 4287's
schema accepts, RSS that feedparser reads without complaint, JSON that parses; no
entry's HTML, as a reader decodes it, holds anything executable; and a body longer than
``feeds.max_content`` is cut and ends with a link to the item's page. And the entries,
which publisher writes itself, are the bytes feedgen writes for them (an oracle below).

Items here are built directly, not collected: the feeds must hold even for what the
sources never let through, as ``publisher.feeds.model`` promises (defence in depth).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from typing import Any

import lxml.html
import pytest
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from publisher import __version__
from publisher.cleaning import xml_safe
from publisher.feeds import FeedBuilder, FeedFormat, FeedSpec
from publisher.feeds.formats import write
from publisher.feeds.model import Alternate, Category, Entry, Feed, choose
from publisher.settings import Settings
from publisher.store.items import StoredItem, StoredTranslation
from tests.feeds.atom_schema import validate_atom
from tests.feeds.conftest import parse_xml_feed
from tests.properties.conftest import (
    HOSTILE,
    LOCALES,
    TAXONOMY,
    examples,
    executable_parts,
    executable_url,
    hostile_text,
)

SEEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PAGE = "https://www.example.org/news/"
# Hostile elements that close what they open: a body made of them, escaped text and a
# long paragraph keeps the paragraph through sanitizing, so it is sure to be cut. (An
# unclosed <style>, <svg> or <noscript> would swallow the paragraph.)
_ELEMENTS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href=" jAvAsCrIpT:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    "<iframe src=javascript:alert(1)></iframe>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    '<p style="background:url(javascript:alert(1))" onclick="alert(1)">p</p>',
    "<style>*{x:expression(alert(1))}</style>",
    "<!-- a comment -- with dashes -->",
    "<![CDATA[ ]]> ]]>",
]


def _megabyte(size: int) -> str:
    return "<p>" + "word <b>bold</b> & <i>more</i> " * (size // 32) + "</p>"


def _plain_item(*, url: str | None, body: str) -> StoredItem:
    """An item in English with plain title and summary."""
    return StoredItem(
        id="item-0",
        source="newsroom",
        published=SEEN,
        updated=None,
        issuer=None,
        fields_of_work=(),
        countries=(),
        first_seen=SEEN,
        changed_at=SEEN,
        translations={"en": StoredTranslation("en", "Title", "Summary.", body, url, SEEN, SEEN)},
    )


# Links the sources let through: http(s), then any text XML can hold.
# What follows a page's address: anything but controls, surrogates and spaces, which no
# URL holds raw (the feeds drop such links rather than guess what was meant).
_PAGES = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zs", "Zl", "Zp"]), max_size=30
).map(lambda rest: PAGE + rest)
_WEB_URLS = st.none() | _PAGES
# Megabyte bodies come as explicit examples: generated ones would take most of the time.
_TEXTS = hostile_text(surrogates=True)


@st.composite
def _items(
    draw: st.DrawFn,
    number: int,
    urls: st.SearchStrategy[str | None] = _WEB_URLS,
    bodies: st.SearchStrategy[str] = _TEXTS,
) -> StoredItem:
    """An item in one to three of the nine languages, every text hostile."""
    texts = {}
    for lang in draw(st.lists(st.sampled_from(LOCALES), min_size=1, max_size=3, unique=True)):
        texts[lang] = StoredTranslation(
            lang=lang,
            title=draw(_TEXTS),
            summary=draw(_TEXTS),
            body_html=draw(bodies),
            url=draw(urls),
            first_seen=SEEN,
            changed_at=SEEN,
        )
    return StoredItem(
        id=f"item-{number}",
        source="newsroom",
        published=draw(st.datetimes(timezones=st.just(UTC))),
        updated=draw(st.none() | st.datetimes(timezones=st.just(UTC))),
        issuer=draw(st.none() | st.sampled_from(sorted(TAXONOMY.issuers))),
        fields_of_work=tuple(
            draw(
                st.lists(st.sampled_from(sorted(TAXONOMY.fields_of_work)), unique=True, max_size=3)
            )
        ),
        countries=tuple(
            draw(st.lists(st.sampled_from(sorted(TAXONOMY.countries)), unique=True, max_size=3))
        ),
        first_seen=SEEN,
        changed_at=SEEN,
        translations=texts,
    )


def _item_lists(
    urls: st.SearchStrategy[str | None] = _WEB_URLS, bodies: st.SearchStrategy[str] = _TEXTS
) -> st.SearchStrategy[list[StoredItem]]:
    return st.integers(1, 3).flatmap(
        lambda count: st.tuples(*(_items(n, urls, bodies) for n in range(count))).map(list)
    )


def _all_formats(
    items: list[StoredItem], locale: str, *, max_content: int = 100_000
) -> dict[FeedFormat, bytes]:
    """The feed of ``items`` in each format, from a builder of its own: its entry cache
    must not carry one example into the next."""
    settings = Settings(base_url="https://news.example.org", feeds={"max_content": max_content})
    builder = FeedBuilder(settings, taxonomy=TAXONOMY)
    return {fmt: write(builder.feed(locale, FeedSpec(), fmt, items), fmt) for fmt in FeedFormat}


def _read(data: dict[FeedFormat, bytes]) -> dict[FeedFormat, list[dict[str, Any]]]:
    """Each format's entries as a reader decodes them: their HTML texts and their links.
    Atom and RSS must parse without feedparser's complaints, Atom against the schema."""
    entries: dict[FeedFormat, list[dict[str, Any]]] = {}
    for fmt in (FeedFormat.ATOM, FeedFormat.RSS):
        parsed = parse_xml_feed(data[fmt])
        assert not parsed.bozo, f"{fmt}: {parsed.get('bozo_exception')}"
        entries[fmt] = [
            {
                "html": [
                    detail.value
                    for detail in [*entry.get("content", ()), entry.get("summary_detail")]
                    if detail and detail.get("type") == "text/html"
                ],
                "links": [link.get("href", "") for link in entry.get("links", ())],
            }
            for entry in parsed.entries
        ]
    validate_atom(data[FeedFormat.ATOM])
    document = json.loads(data[FeedFormat.JSON])
    entries[FeedFormat.JSON] = [
        {"html": [item["content_html"]], "links": [item.get("url", "")]}
        for item in document["items"]
    ]
    return entries


def _assert_inert(entries: dict[FeedFormat, list[dict[str, Any]]]) -> None:
    for fmt, decoded in entries.items():
        for entry in decoded:
            for html in entry["html"]:
                assert executable_parts(html) == [], f"{fmt}: {executable_parts(html)}"
                assert "<script" not in html.lower(), f"{fmt}: {html[:300]!r}"
            for link in entry["links"]:
                assert not executable_url(link), f"{fmt}: {link!r}"


@examples(60)
@example(
    items=[_plain_item(url=PAGE, body="".join(HOSTILE) + "\ud800]]>--" + _megabyte(1_000_000))],
    locale="ar",
)
@given(items=_item_lists(), locale=st.sampled_from(LOCALES))
def test_every_format_is_written_readable_and_inert(items: list[StoredItem], locale: str) -> None:
    """Hostile items: Atom, RSS and JSON written; each parses cleanly; no entry's HTML runs."""
    entries = _read(_all_formats(items, locale))
    assert {fmt: len(decoded) for fmt, decoded in entries.items()} == {
        fmt: len(items) for fmt in FeedFormat
    }
    _assert_inert(entries)


def _long_bodies(length: int) -> st.SearchStrategy[str]:
    """Bodies whose sanitized HTML is longer than ``length``: escaped hostile text, whole
    hostile elements and enough plain paragraphs, in any order."""
    blocks = st.lists(
        hostile_text().map(lambda text: f"<p>{escape(text)}</p>") | st.sampled_from(_ELEMENTS),
        max_size=6,
    )
    filler = f"<p>{'x' * length}</p>"
    return blocks.flatmap(lambda found: st.permutations([*found, filler])).map("".join)


@st.composite
def _oversized(draw: st.DrawFn) -> tuple[int, StoredItem]:
    max_content = draw(st.integers(1000, 5000))
    return max_content, draw(_items(0, _PAGES, _long_bodies(max_content)))


def _assert_ends_with_link(html: str, url: str, max_content: int) -> None:
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    last = root[-1]
    assert last.tag == "p" and [a.get("href") for a in last.iter("a")] == [url], html[-300:]
    # Cut near max_content; the link, and the tags the cut left open, come on top.
    assert len(html) <= max_content + len(escape(url)) + 200, len(html)


@examples(40)
@example(case=(100_000, _plain_item(url=PAGE + "a", body=_megabyte(1_000_000))), locale="en")
@given(case=_oversized(), locale=st.sampled_from(LOCALES))
def test_a_long_body_is_cut_and_ends_with_a_link_to_the_item(
    case: tuple[int, StoredItem], locale: str
) -> None:
    """A body longer than feeds.max_content is cut, in every format, and ends with a link."""
    max_content, item = case
    entries = _read(_all_formats([item], locale, max_content=max_content))
    shown, _ = choose(item, locale, "en")
    assert shown.url is not None
    for decoded in entries.values():
        [entry] = decoded
        _assert_ends_with_link(entry["html"][0], shown.url, max_content)
    _assert_inert(entries)


@examples(15)
@example(url="javascript:alert(1)", locale="en")
@given(
    url=st.builds(
        "{}{}".format,
        st.sampled_from(["javascript:", " JavaScript:", "java\tscript:", "vbscript:"]),
        hostile_text(max_pieces=2),
    ),
    locale=st.sampled_from(LOCALES),
)
def test_an_item_link_never_becomes_an_executable_link(url: str, locale: str) -> None:
    """Whatever URL the store holds for an item, no feed links to it as a script."""
    item = _plain_item(url=url, body=_megabyte(5000))
    _assert_inert(_read(_all_formats([item], locale, max_content=1000)))


@examples(15)
@example(url=PAGE + "\x01", locale="en")
@given(
    url=hostile_text(min_pieces=1, surrogates=True).map(lambda rest: PAGE + rest),
    locale=st.sampled_from(LOCALES),
)
def test_any_item_link_leaves_a_cut_body_writable(url: str, locale: str) -> None:
    """Whatever characters an item's URL holds, a feed with its cut body is written and read."""
    item = _plain_item(url=url, body=_megabyte(5000))
    _read(_all_formats([item], locale, max_content=1000))


# -- the entries' bytes: feedgen's -------------------------------------------------------
#
# The oracle: each feed written whole by feedgen, as publisher wrote them before it wrote
# the entries itself (feedgen for every element, a small extension for the entry's
# xml:lang and links, json.dumps for the whole JSON document).


class _OracleFeed(BaseExtension):  # type: ignore[misc]
    hub: str | None = None

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        return feed

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = feed.find("channel")
        if self.hub and channel is not None:
            etree.SubElement(channel, "{http://www.w3.org/2005/Atom}link", href=self.hub, rel="hub")
        return feed


class _OracleEntry(BaseEntryExtension):  # type: ignore[misc]
    entry: Entry | None = None

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, element: etree._Element) -> etree._Element:
        entry = self.entry
        assert entry is not None
        element.set("{http://www.w3.org/XML/1998/namespace}lang", entry.lang.replace("_", "-"))
        for alternate in sorted(entry.alternates, key=lambda a: a.lang != entry.lang):
            attributes = {
                "rel": "alternate",
                "type": "text/html",
                "hreflang": alternate.lang.replace("_", "-"),
                "href": alternate.href,
            }
            etree.SubElement(element, "link", attrib=attributes)
        return element

    def extend_rss(self, element: etree._Element) -> etree._Element:
        return element


def _feedgen_document(feed: Feed, fmt: FeedFormat) -> bytes:
    if fmt is FeedFormat.JSON:
        return _json_document(feed)
    fg = FeedGenerator()
    fg.register_extension("publisher", _OracleFeed, _OracleEntry, atom=True, rss=True)
    fg.load_extension("dc", atom=False, rss=True)
    fg.publisher.hub = feed.hub
    fg.id(feed.id)
    fg.title(feed.title)
    fg.subtitle(feed.subtitle)
    fg.language(feed.locale.replace("_", "-"))
    fg.author({"name": feed.author})
    fg.generator("publisher", version=__version__, uri="https://pypi.org/project/publisher/")
    media_type = fmt.media_type.split(";")[0]
    fg.link(href=feed.self_url, rel="self", type=media_type)
    if fmt is FeedFormat.ATOM:
        fg.link(href=feed.home_url, rel="alternate", type="text/html")
        if feed.hub:
            fg.link(href=feed.hub, rel="hub")
    else:
        fg.link(href=feed.home_url, rel="alternate")
    fg.updated(feed.updated)
    fg.lastBuildDate(feed.updated)
    for entry in feed.entries:
        fe = fg.add_entry(order="append")
        fe.publisher.entry = entry
        fe.id(entry.id)
        fe.title(entry.title)
        fe.published(entry.published)
        fe.updated(entry.updated)
        if entry.summary:
            fe.summary(entry.summary)
        fe.content(entry.content_html, type="html" if fmt is FeedFormat.ATOM else "CDATA")
        if fmt is FeedFormat.RSS:
            if entry.link:
                fe.link(href=entry.link)
            fe.description(escape(entry.summary or entry.title, quote=False))
            fe.dc.dc_language(entry.lang.replace("_", "-"))
            if entry.author:
                fe.dc.dc_creator(entry.author)
        elif entry.author:
            fe.author({"name": entry.author})
        for category in entry.categories:
            fe.category(term=category.term, scheme=category.scheme, label=category.label)
    if fmt is FeedFormat.ATOM:
        atom: bytes = fg.atom_str(pretty=True, encoding="UTF-8")
        return atom
    rss: bytes = fg.rss_str(pretty=True, encoding="UTF-8")
    return rss


def _json_document(feed: Feed) -> bytes:
    document: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": feed.title,
        "home_page_url": feed.home_url,
        "feed_url": feed.self_url,
        "description": feed.subtitle,
        "language": feed.locale.replace("_", "-"),
        "authors": [{"name": feed.author}],
    }
    if feed.hub:
        document["hubs"] = [{"type": "WebSub", "url": feed.hub}]
    items = []
    for entry in feed.entries:
        item: dict[str, Any] = {"id": entry.id}
        if entry.link:
            item["url"] = entry.link
        item["title"] = entry.title
        item["content_html"] = entry.content_html
        if entry.summary:
            item["summary"] = entry.summary
        item["date_published"] = entry.published.isoformat()
        item["date_modified"] = entry.updated.isoformat()
        if entry.author:
            item["authors"] = [{"name": entry.author}]
        if entry.categories:
            item["tags"] = [category.label for category in entry.categories]
        item["language"] = entry.lang.replace("_", "-")
        if entry.alternates:
            translations = [
                {"language": a.lang.replace("_", "-"), "url": a.href} for a in entry.alternates
            ]
            item["_publisher"] = {"translations": translations}
        items.append(item)
    document["items"] = items
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def _assert_feedgen_bytes(feed: Feed) -> None:
    for fmt in FeedFormat:
        try:
            expected = _feedgen_document(feed, fmt)
        except ValueError:  # feedgen refuses it (an id or title missing, "]]>" in CDATA)
            with pytest.raises(ValueError):
                write(feed, fmt)
            continue
        assert write(feed, fmt) == expected, fmt


@examples(60)
@given(items=_item_lists(), locale=st.sampled_from(LOCALES))
def test_hostile_items_are_written_as_feedgen_writes_them(
    items: list[StoredItem], locale: str
) -> None:
    """Feeds of hostile items, made by the builder, are byte for byte the documents feedgen
    writes whole (the entries written by publisher, the head by feedgen)."""
    settings = Settings(base_url="https://news.example.org")
    builder = FeedBuilder(settings, taxonomy=TAXONOMY)
    _assert_feedgen_bytes(builder.feed(locale, FeedSpec(), FeedFormat.ATOM, items))


# Any text an XML document can hold: markup and quote characters, CR, tabs, line breaks.
_XML_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("<>&\"'\r\n\t"),
    max_size=40,
).map(xml_safe)
_MOMENTS = st.datetimes(
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=45)), timezone(-timedelta(hours=3))]
    )
)
_LANGS = st.sampled_from(["en", "ru", "pt_BR", "zh_Hant_TW"])


@st.composite
def _entries(draw: st.DrawFn) -> Entry:
    """Any entry: every text anything XML can hold, empty where it may be (all but the
    id and title, which every entry has)."""
    return Entry(
        id=draw(_XML_TEXT.filter(bool)),
        lang=draw(_LANGS),
        is_fallback=draw(st.booleans()),
        title=draw(_XML_TEXT.filter(bool)),
        summary=draw(_XML_TEXT),
        content_html=draw(_XML_TEXT),
        published=draw(_MOMENTS),
        updated=draw(_MOMENTS),
        author=draw(st.none() | _XML_TEXT),
        link=draw(st.none() | _XML_TEXT),
        alternates=tuple(draw(st.lists(st.builds(Alternate, _XML_TEXT, _LANGS), max_size=3))),
        categories=tuple(
            draw(st.lists(st.builds(Category, _XML_TEXT, _XML_TEXT, _XML_TEXT), max_size=3))
        ),
    )


@examples(150)
@example(
    entries=[
        Entry(
            id="tag:x,2026:item/a\r\n\t\"'<>&",
            lang="pt_BR",
            is_fallback=False,
            title="]]> <b>&amp;</b> \U0001f600",
            summary="",
            content_html="",
            published=datetime(1, 1, 1, tzinfo=UTC),
            updated=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            author="",
            link="",
            alternates=(Alternate('https://x/?a=1&b="2"\t', "en"),),
            categories=(Category("", "t\n", ""),),
        )
    ],
    hub="https://hub.example.org/?a&b",
)
@given(entries=st.lists(_entries(), max_size=3), hub=st.none() | _XML_TEXT)
def test_any_entry_is_written_as_feedgen_writes_it(entries: list[Entry], hub: str | None) -> None:
    """Entries of any XML-safe text (markup and quote characters, CR, tabs, empty fields,
    years 1 and 9999, offsets other than UTC) are written in every format byte for byte
    as feedgen and json.dumps write them, or refused where feedgen refuses them."""
    feed = Feed(
        id="tag:news.example.org,2026:feeds/en/all",
        locale="en",
        title="OSCE News: all news",
        subtitle="All news of OSCE News.",
        author="OSCE News",
        self_url="https://news.example.org/feeds/en/all.atom",
        home_url="https://news.example.org/",
        updated=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        hub=hub or None,
        entries=tuple(entries),
    )
    _assert_feedgen_bytes(feed)
