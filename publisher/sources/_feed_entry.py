"""What feedparser makes of one feed entry, read the way the ``feed`` source needs it.

feedparser normalizes RSS 2.0 and Atom (RFC 4287) into one dictionary per entry but
leaves some choices to its caller: which of several alternate links is the entry's own
page, which language the entry is in, which of its texts is the body, and what stands
for a key when the entry has neither id nor link. Those choices are made here.
"""

from __future__ import annotations

import hashlib
import html
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from publisher.sources._language import primary_language


def entry_language(raw: Any) -> str | None:
    """The entry's own xml:lang, which feedparser records on its text constructs."""
    details = [raw.get("title_detail"), raw.get("summary_detail"), *(raw.get("content") or ())]
    return next((d.get("language") for d in details if d and d.get("language")), None)


def entry_links(raw: Any, lang: str) -> tuple[str | None, frozenset[str]]:
    """The entry's own page and its pages in other languages (``hreflang`` links).

    feedparser's ``link`` is the *last* alternate link, which may be a translation's,
    so the entry's own link is chosen here: no hreflang, or the entry's language.
    """
    own: str | None = None
    others = set()
    for link in raw.get("links") or ():
        href = link.get("href")
        if not _is_web_url(href) or link.get("rel", "alternate") != "alternate":
            continue
        hreflang = link.get("hreflang")
        if hreflang and primary_language(hreflang) != lang:
            others.add(href)
        elif own is None:
            own = href
    if own is None and _is_web_url(raw.get("link")) and raw.get("link") not in others:
        own = raw.get("link")
    return own, frozenset(others)


def _is_web_url(value: object) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme.lower() in {"http", "https"}


def entry_body(raw: Any) -> str:
    """The entry's body as (unsanitized) HTML: its content, else its summary."""
    for part in [*(raw.get("content") or ()), raw.get("summary_detail")]:
        if part and part.get("value"):
            value: str = part["value"]
            if part.get("type") == "text/plain":
                return "".join(f"<p>{html.escape(p)}</p>" for p in value.split("\n\n"))
            return value
    return html.escape(raw.get("summary") or "")


def utc_datetime(value: time.struct_time | None) -> datetime | None:
    """feedparser's dates are struct_time values already converted to UTC."""
    if value is None:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def hash_key(title: str, raw: Any) -> str:
    """A key for an entry with neither id nor link: a hash of its title and date."""
    date = dict.get(raw, "published") or dict.get(raw, "updated") or ""
    digest = hashlib.sha256(f"{title}\n{date}".encode()).hexdigest()
    return f"sha256:{digest[:32]}"
