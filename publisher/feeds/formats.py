"""Writing a :class:`Feed` as Atom 1.0, RSS 2.0 and JSON Feed 1.1, one entry at a time.

A document is its head (the feed's own elements) around its entries, and an entry's
bytes depend on the entry alone, never on the feed it sits in: each entry is written
once (:func:`write_entry`) and its bytes are reused by every feed that shows it
(:func:`assemble`). An item appears in about five feeds of a language, and writing
entries was most of a build.

feedgen writes the head of Atom and RSS. The entries are written here, in feedgen's
element order and pretty-printed layout and with libxml2's escaping, so a document is
the bytes feedgen would give for the whole feed (the feedgen-written oracle in
``tests/properties/test_feeds.py`` holds it to that). Writing them here also mends what
feedgen gets wrong for entries: it drops ``rel``, ``type`` and ``hreflang`` from Atom
entry links (its issue 135), has no per-entry language, and sets the process locale for
every RSS date. Its RSS head still sets it, so RSS heads are written under a lock.
Every value comes from the feed, none from the clock: the same feed gives the same bytes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from publisher import __version__
from publisher.feeds.model import Entry, Feed
from publisher.feeds.spec import FeedFormat

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
_EXTENSION = "publisher"
_rss_lock = threading.Lock()

# Where the entries go: before the end of the entry-less document feedgen writes.
_ATOM_END = b"</feed>\n"
_RSS_END = b"  </channel>\n</rss>\n"
# RFC 822 §5.1 (as RSS 2.0 wants it) names days and months in English, whatever the
# process locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _language_tag(locale: str) -> str:
    """A Babel locale identifier (``pt_BR``) as the BCP 47 tag that xml:lang (XML 1.0
    §2.12), hreflang (RFC 4287 §4.2.7.4), RSS and JSON Feed expect (``pt-BR``)."""
    return locale.replace("_", "-")


# -- the head (feedgen) -----------------------------------------------------------------


class _FeedExtension(BaseExtension):  # type: ignore[misc]
    hub: str | None = None

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        return feed

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        if self.hub:
            channel = feed.find("channel")
            assert channel is not None
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=self.hub, rel="hub")
        return feed


class _DublinCore(BaseExtension):  # type: ignore[misc]
    """The dc: prefix of the items' dc:creator and dc:language, declared on <rss> as
    feedgen's own "dc" extension declares it (which costs an import attempt a feed)."""

    def extend_ns(self) -> dict[str, str]:
        return {"dc": DC_NS}

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        return feed

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        return feed


def _generator(feed: Feed, fmt: FeedFormat) -> FeedGenerator:
    """The feed's own elements; its entries are not given to feedgen."""
    fg = FeedGenerator()
    fg.register_extension(_EXTENSION, _FeedExtension, atom=True, rss=True)
    fg.register_extension("dc", _DublinCore, atom=False, rss=True)
    getattr(fg, _EXTENSION).hub = feed.hub
    fg.id(feed.id)
    fg.title(feed.title)
    fg.subtitle(feed.subtitle)
    fg.language(_language_tag(feed.locale))
    fg.author({"name": feed.author})
    fg.generator("publisher", version=__version__, uri="https://pypi.org/project/publisher/")
    if fmt is FeedFormat.ATOM:
        fg.link(href=feed.self_url, rel="self", type=fmt.media_type.split(";")[0])
        fg.link(href=feed.home_url, rel="alternate", type="text/html")
        if feed.hub:
            fg.link(href=feed.hub, rel="hub")
    else:
        # feedgen makes the last link given the channel's <link>, which RSS 2.0 wants
        # to be the web site (its comment says the first): the home page goes last.
        fg.link(href=feed.self_url, rel="self", type=fmt.media_type.split(";")[0])
        fg.link(href=feed.home_url, rel="alternate")
    fg.updated(feed.updated)
    fg.lastBuildDate(feed.updated)
    return fg


def _atom_head(feed: Feed) -> bytes:
    data: bytes = _generator(feed, FeedFormat.ATOM).atom_str(pretty=True, encoding="UTF-8")
    return _cut(data, _ATOM_END)


def _rss_head(feed: Feed) -> bytes:
    with _rss_lock:  # feedgen's RSS dates call locale.setlocale(): process-wide
        data: bytes = _generator(feed, FeedFormat.RSS).rss_str(pretty=True, encoding="UTF-8")
    return _cut(data, _RSS_END)


def _cut(document: bytes, end: bytes) -> bytes:
    if not document.endswith(end):
        raise ValueError(f"feedgen wrote a document not ending in {end!r}: {document[-80:]!r}")
    return document[: -len(end)]


# -- the entries ------------------------------------------------------------------------
#
# Pretty-printed as libxml2 does: an element per line, indented two spaces a level,
# text inline; Atom entries one level deep, RSS items two. Text is escaped as libxml2
# escapes it (&, <, >, and CR, which a parser would otherwise turn into LF), attribute
# values also their quote and whitespace (XML 1.0 §3.3.3 would normalize it to spaces).


def _text(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _attribute(value: str) -> str:
    return _text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def _atom_entry(entry: Entry) -> str:
    lines = [
        f'  <entry xml:lang="{_attribute(_language_tag(entry.lang))}">',
        f"    <id>{_text(entry.id)}</id>",
        f"    <title>{_text(entry.title)}</title>",
        f"    <updated>{entry.updated.isoformat()}</updated>",
    ]
    if entry.author:
        lines += ["    <author>", f"      <name>{_text(entry.author)}</name>", "    </author>"]
    if entry.content_html:
        lines.append(f'    <content type="html">{_text(entry.content_html)}</content>')
    else:
        lines.append('    <content type="html"/>')
    if entry.summary:
        lines.append(f"    <summary>{_text(entry.summary)}</summary>")
    for category in entry.categories:
        attributes = f'term="{_attribute(category.term)}"'
        if category.scheme:
            attributes += f' scheme="{_attribute(category.scheme)}"'
        if category.label:
            attributes += f' label="{_attribute(category.label)}"'
        lines.append(f"    <category {attributes}/>")
    lines.append(f"    <published>{entry.published.isoformat()}</published>")
    # One link per translation, the one shown first (RFC 4287 §4.2.7.2 allows one per
    # type and hreflang).
    for alternate in sorted(entry.alternates, key=lambda a: a.lang != entry.lang):
        lines.append(
            f'    <link rel="alternate" type="text/html" '
            f'hreflang="{_attribute(_language_tag(alternate.lang))}" '
            f'href="{_attribute(alternate.href)}"/>'
        )
    lines.append("  </entry>\n")
    return "\n".join(lines)


def _rss_date(moment: datetime) -> str:
    """RFC 822 §5.1 as RSS 2.0 wants it, the year in full (RFC 1123 §5.2.14), as feedgen
    writes it but without setting the process locale."""
    return (
        f"{_DAYS[moment.weekday()]}, {moment.strftime('%d')} {_MONTHS[moment.month - 1]} "
        f"{moment.strftime('%Y %H:%M:%S %z')}"
    )


def _rss_item(entry: Entry) -> str:
    if "]]>" in entry.content_html:  # it would end the CDATA section early
        raise ValueError(f"{entry.id}: content holds ']]>', which a CDATA section cannot")
    # An RSS description is HTML (RSS 2.0, "item"); the summary is plain text, in
    # which "<script>" is words to show, not markup to run.
    description = escape(entry.summary or entry.title, quote=False)
    lines = ["    <item>", f"      <title>{_text(entry.title)}</title>"]
    if entry.link:
        lines.append(f"      <link>{_text(entry.link)}</link>")
    lines += [
        f"      <description>{_text(description)}</description>",
        f"      <content:encoded><![CDATA[{entry.content_html}]]></content:encoded>",
        f'      <guid isPermaLink="false">{_text(entry.id)}</guid>',
    ]
    for category in entry.categories:
        domain = f' domain="{_attribute(category.scheme)}"' if category.scheme else ""
        lines.append(f"      <category{domain}>{_text(category.label)}</category>")
    lines.append(f"      <pubDate>{_rss_date(entry.published)}</pubDate>")
    if entry.author:
        lines.append(f"      <dc:creator>{_text(entry.author)}</dc:creator>")
    lines += [
        f"      <dc:language>{_text(_language_tag(entry.lang))}</dc:language>",
        "    </item>\n",
    ]
    return "\n".join(lines)


def _json_item(entry: Entry) -> dict[str, Any]:
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
    item["language"] = _language_tag(entry.lang)
    if entry.alternates:
        item["_publisher"] = {
            "translations": [
                {"language": _language_tag(a.lang), "url": a.href} for a in entry.alternates
            ]
        }
    return item


# A str as a JSON string literal, by the C encoder. json.dumps(indent=2) would encode a
# whole item with its pure-Python encoder, which is slower than writing all the XML.
_json_string = json.JSONEncoder(ensure_ascii=False).encode


def _json_value(value: str | list[Any] | dict[str, Any], indent: str) -> str:
    """``value`` laid out as json.dumps(indent=2) lays it out at the depth of ``indent``."""
    if isinstance(value, str):
        return _json_string(value)
    inner = indent + "  "
    if isinstance(value, dict):
        members = [f"{inner}{_json_string(k)}: {_json_value(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(members) + f"\n{indent}}}" if members else "{}"
    elements = [inner + _json_value(v, inner) for v in value]
    return "[\n" + ",\n".join(elements) + f"\n{indent}]" if elements else "[]"


def _json_entry(entry: Entry) -> str:
    # Two levels deep, in the document's "items".
    return "    " + _json_value(_json_item(entry), "    ")


_ENTRY_WRITERS = {
    FeedFormat.ATOM: _atom_entry,
    FeedFormat.RSS: _rss_item,
    FeedFormat.JSON: _json_entry,
}


def write_entry(entry: Entry, fmt: FeedFormat) -> bytes:
    """``entry`` as its feed document holds it, in any feed of that format."""
    # RFC 4287 §4.1.2: an entry has an id and a title (the builder's always do: an
    # untitled item is titled with its id); RSS and JSON Feed are held to it too.
    if not (entry.id and entry.title):
        raise ValueError(f"an entry needs an id and a title: {entry.id!r}, {entry.title!r}")
    return _ENTRY_WRITERS[fmt](entry).encode("utf-8")


# -- documents --------------------------------------------------------------------------


def _json_document(feed: Feed, entries: Sequence[bytes]) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    document: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": feed.title,
        "home_page_url": feed.home_url,
        "feed_url": feed.self_url,
        "description": feed.subtitle,
        "language": _language_tag(feed.locale),
        "authors": [{"name": feed.author}],
    }
    if feed.hub:
        document["hubs"] = [{"type": "WebSub", "url": feed.hub}]
    # The head without its closing brace, then "items" as json.dumps(indent=2) writes it.
    head = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
    head = _cut(head, b"\n}")
    if not entries:
        return head + b',\n  "items": []\n}\n'
    return b"".join((head, b',\n  "items": [\n', b",\n".join(entries), b"\n  ]\n}\n"))


def assemble(feed: Feed, fmt: FeedFormat, entries: Sequence[bytes]) -> bytes:
    """The document of ``feed`` holding ``entries`` (written by :func:`write_entry` in
    ``fmt``), in their order; ``feed.entries`` is not read."""
    if fmt is FeedFormat.JSON:
        return _json_document(feed, entries)
    if fmt is FeedFormat.ATOM:
        return b"".join((_atom_head(feed), *entries, _ATOM_END))
    return b"".join((_rss_head(feed), *entries, _RSS_END))


def write(feed: Feed, fmt: FeedFormat) -> bytes:
    """The whole document of ``feed`` in ``fmt``."""
    return assemble(feed, fmt, [write_entry(entry, fmt) for entry in feed.entries])
