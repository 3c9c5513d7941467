"""Writing a :class:`Feed` as Atom 1.0 and RSS 2.0 (feedgen) and JSON Feed 1.1.

feedgen 1.0 drops ``rel``, ``type`` and ``hreflang`` from Atom entry links (its issue
135) and has no per-entry language, so a small entry extension writes the entry's
``xml:lang`` and its links itself; a feed extension adds the WebSub hub link to RSS.
Its RSS date formatter sets the process locale for each date, so RSS is written under
a lock. Every value comes from the feed, none from the clock: the same feed gives the
same bytes.
"""

from __future__ import annotations

import json
import threading
from html import escape
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from publisher import __version__
from publisher.feeds.model import Entry, Feed
from publisher.feeds.spec import FeedFormat

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_EXTENSION = "publisher"
_rss_lock = threading.Lock()


def _language_tag(locale: str) -> str:
    """A Babel locale identifier (``pt_BR``) as the BCP 47 tag that xml:lang (XML 1.0
    §2.12), hreflang (RFC 4287 §4.2.7.4), RSS and JSON Feed expect (``pt-BR``)."""
    return locale.replace("_", "-")


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


class _EntryExtension(BaseEntryExtension):  # type: ignore[misc]
    entry: Entry | None = None

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, element: etree._Element) -> etree._Element:
        entry = self.entry
        assert entry is not None
        element.set(XML_LANG, _language_tag(entry.lang))
        # feedgen writes <link href> for each link it was given, without rel or
        # hreflang (issue 135): it is given none, and the links are written here, one
        # per translation, the one shown first (RFC 4287 §4.2.7.2 allows one per
        # type and hreflang).
        shown_first = sorted(entry.alternates, key=lambda a: a.lang != entry.lang)
        for alternate in shown_first:
            _sub(
                element,
                "link",
                rel="alternate",
                type="text/html",
                hreflang=_language_tag(alternate.lang),
                href=alternate.href,
            )
        return element

    def extend_rss(self, element: etree._Element) -> etree._Element:
        return element


def _sub(parent: etree._Element, name: str, **attributes: str) -> etree._Element:
    # feedgen builds Atom elements without a namespace under the root's default one:
    # the same here, or lxml would write <ns0:link xmlns:ns0=…>.
    return etree.SubElement(parent, name, attrib=attributes)


def _generator(feed: Feed, fmt: FeedFormat) -> FeedGenerator:
    fg = FeedGenerator()
    fg.register_extension(_EXTENSION, _FeedExtension, _EntryExtension, atom=True, rss=True)
    fg.load_extension("dc", atom=False, rss=True)
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
    for entry in feed.entries:
        _add(fg, entry, fmt)
    return fg


def _add(fg: FeedGenerator, entry: Entry, fmt: FeedFormat) -> None:
    # Every value is checked already (Entry is built whole before this): feedgen adds
    # the entry before it is filled, and a setter that raised would leave it broken.
    fe = fg.add_entry(order="append")
    getattr(fe, _EXTENSION).entry = entry
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
        # An RSS description is HTML (RSS 2.0, "item"); the summary is plain text, in
        # which "<script>" is words to show, not markup to run.
        fe.description(escape(entry.summary or entry.title, quote=False))
        fe.dc.dc_language(_language_tag(entry.lang))
        if entry.author:
            fe.dc.dc_creator(entry.author)
    elif entry.author:
        fe.author({"name": entry.author})
    for category in entry.categories:
        fe.category(term=category.term, scheme=category.scheme, label=category.label)


def write_atom(feed: Feed) -> bytes:
    data: bytes = _generator(feed, FeedFormat.ATOM).atom_str(pretty=True, encoding="UTF-8")
    return data


def write_rss(feed: Feed) -> bytes:
    with _rss_lock:  # feedgen's RSS dates call locale.setlocale(): process-wide
        data: bytes = _generator(feed, FeedFormat.RSS).rss_str(pretty=True, encoding="UTF-8")
    return data


def write_json(feed: Feed) -> bytes:
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
    document["items"] = [_json_item(entry) for entry in feed.entries]
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


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


WRITERS = {FeedFormat.ATOM: write_atom, FeedFormat.RSS: write_rss, FeedFormat.JSON: write_json}


def write(feed: Feed, fmt: FeedFormat) -> bytes:
    return WRITERS[fmt](feed)
