"""The ``feed`` source: an RSS 2.0 or Atom (RFC 4287) feed, over HTTP or from a file.

Over HTTP the feed is fetched conditionally: the ETag and Last-Modified of the last
answer are kept in the source's state and sent back, and a 304 means "nothing new".
A local file (a path or a ``file://`` URL) uses its modification time the same way.

What becomes of an entry:

* **key**: the entry's ``id``/``guid``; else its link; else a hash of title and date.
* **dates**: ``published``, else ``updated``, as aware UTC datetimes; ``updated`` is kept
  when it differs. An entry with neither is skipped with a problem line: a made-up
  date (the fetch time) would change from run to run and mis-order the item.
* **language**: the entry's ``xml:lang``, else the feed's (``<language>``/``xml:lang``),
  else the setting, else English; reduced to its primary subtag ("en-US" → "en"),
  the form translations are keyed by.
* **tags**: categories (term or label) that the settings' ``categories`` map or that
  the taxonomy knows as a field of work, a country or a region; others are ignored.
  The issuer is the setting's, else an author the taxonomy knows as an issuer.
* **translations**: entries sharing a key, or pointing at each other with
  ``<link rel="alternate" hreflang="…">``, are one item with one translation each.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import feedparser

from publisher.cleaning import MAX_SUMMARY, clean_text, sanitize_html, summary_from_html
from publisher.errors import SourceError
from publisher.items import FetchedItem, Translation
from publisher.settings import FeedSourceSettings, HttpSettings
from publisher.sources import SourceResult
from publisher.sources._feed_entry import (
    entry_body,
    entry_language,
    entry_links,
    hash_key,
    utc_datetime,
)
from publisher.sources._grouping import group_linked
from publisher.sources._http import HttpClient
from publisher.sources._language import DEFAULT_LANGUAGE, pick_primary, primary_language
from publisher.sources._tags import Tagger
from publisher.taxonomy import Taxonomy

# What feedparser flags about the HTTP headers, not about the feed: it read the feed.
_BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One feed entry read, before translations are grouped into items."""

    key: str
    lang: str
    link: str | None
    alternates: frozenset[str]  # links to this entry in other languages
    translation: Translation
    published: datetime
    updated: datetime | None
    issuer: str | None
    fields_of_work: tuple[str, ...]
    countries: tuple[str, ...]


class FeedSource:
    """An RSS or Atom feed; ``http`` is needed for http(s) URLs (a default client is
    made for the call when it is ``None``)."""

    def __init__(
        self, settings: FeedSourceSettings, *, taxonomy: Taxonomy, http: HttpClient | None
    ) -> None:
        self._settings = settings
        self._taxonomy = taxonomy
        self._http = http
        self._tagger = Tagger(taxonomy, settings.categories)

    @property
    def name(self) -> str:
        return self._settings.name

    async def fetch(self, state: Mapping[str, str]) -> SourceResult:
        url = self._settings.url
        scheme = urlsplit(url).scheme.lower()
        if scheme in {"http", "https"}:
            loaded = await self._fetch_http(url, state)
        elif scheme == "file" or len(scheme) <= 1:  # a path; "C:" is a drive, not a scheme
            loaded = await asyncio.to_thread(self._read_file, url, state)
        else:
            raise SourceError(f"{self.name}: {url}: expected an http(s) URL or a file path")
        if loaded is None:
            return SourceResult(items=(), not_modified=True, state=dict(state))
        content, headers, new_state = loaded
        items, problems = await asyncio.to_thread(self._parse, content, headers)
        return SourceResult(items=items, problems=problems, state=new_state)

    # -- reading -------------------------------------------------------------------------

    async def _fetch_http(
        self, url: str, state: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str], dict[str, str]] | None:
        if self._http is None:
            async with HttpClient(HttpSettings()) as http:
                return await self._get(http, url, state)
        return await self._get(self._http, url, state)

    async def _get(
        self, http: HttpClient, url: str, state: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str], dict[str, str]] | None:
        response = await http.get(
            url,
            etag=state.get("etag"),
            last_modified=state.get("last_modified"),
            source=self.name,
        )
        if response.not_modified:
            return None
        new_state = {}
        if response.etag:
            new_state["etag"] = response.etag
        if response.last_modified:
            new_state["last_modified"] = response.last_modified
        # feedparser reads the charset from Content-Type and resolves relative links
        # against Content-Location.
        headers = {"content-location": response.url}
        if response.content_type:
            headers["content-type"] = response.content_type
        return response.content, headers, new_state

    def _read_file(
        self, url: str, state: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str], dict[str, str]] | None:
        parts = urlsplit(url)
        path = Path(url2pathname(unquote(parts.path))) if parts.scheme == "file" else Path(url)
        try:
            stat = path.stat()
            new_state = {"mtime_ns": str(stat.st_mtime_ns), "size": str(stat.st_size)}
            if all(state.get(k) == v for k, v in new_state.items()):
                return None
            content = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{self.name}: {path}: cannot read the feed: {exc}") from exc
        headers = {"content-location": path.resolve().as_uri(), "content-type": "application/xml"}
        return content, headers, new_state

    # -- parsing -------------------------------------------------------------------------

    def _parse(
        self, content: bytes, headers: dict[str, str]
    ) -> tuple[tuple[FetchedItem, ...], tuple[str, ...]]:
        origin = self._settings.url
        # A file-like object, never bytes or str: feedparser would take those for a
        # file name or a URL to open.
        try:
            parsed: Any = feedparser.parse(io.BytesIO(content), response_headers=headers)
        except (UnicodeError, ValueError) as exc:  # e.g. &#xd800;: a surrogate's reference
            raise SourceError(f"{self.name}: {origin}: not a readable feed: {exc}") from exc
        readable = [e for e in parsed.entries if e.get("title") or e.get("id") or e.get("link")]
        problems: list[str] = []
        reason = parsed.get("bozo_exception")
        malformed = bool(parsed.get("bozo")) and not isinstance(reason, _BENIGN)
        if not readable and (malformed or not parsed.get("version")):
            why = reason if malformed else "no RSS or Atom feed found"
            raise SourceError(f"{self.name}: {origin}: not a readable feed: {why}")
        if malformed:
            problems.append(
                f"{self.name}: {origin}: the feed is malformed ({reason}); "
                f"kept the {len(readable)} entries that could be read"
            )
        feed_lang = primary_language(parsed.feed.get("language"))
        issuer = None
        if self._settings.issuer:
            issuer = self._taxonomy.issuer(self._settings.issuer)
            if issuer is None:
                problems.append(
                    f"{self.name}: issuer {self._settings.issuer!r} of the settings is not "
                    "an issuer of the taxonomy; ignored"
                )
        entries = []
        for raw in readable:
            entry = self._entry(raw, feed_lang, issuer, problems)
            if entry is not None:
                entries.append(entry)
        items = [self._item(group, problems) for group in _group(entries)]
        return tuple(items), tuple(problems)

    def _entry(
        self, raw: Any, feed_lang: str | None, issuer: str | None, problems: list[str]
    ) -> _Entry | None:
        lang = (
            primary_language(entry_language(raw))
            or feed_lang
            or primary_language(self._settings.language)
            or DEFAULT_LANGUAGE
        )
        link, alternates = entry_links(raw, lang)
        title_source = raw.get("title") or ""
        # dict.get: FeedParserDict's own get() answers "updated" with "published" (and a
        # DeprecationWarning) when there is no updated date, hiding which one it was.
        updated = utc_datetime(dict.get(raw, "updated_parsed"))
        published = utc_datetime(dict.get(raw, "published_parsed")) or updated
        key = raw.get("id") or link or hash_key(title_source, raw)
        where = f"{self.name}: {self._settings.url}: entry {key!r}"
        if published is None:
            problems.append(f"{where}: no published or updated date; skipped")
            return None
        body = sanitize_html(entry_body(raw))
        summary = clean_text(raw.get("summary") or "", limit=MAX_SUMMARY)
        title = clean_text(title_source) or summary_from_html(body, limit=120)
        if not title:
            problems.append(f"{where}: no title and no text; skipped")
            return None
        tags = [t.get(k) for t in raw.get("tags") or () for k in ("term", "label")]
        fields, countries = self._tagger.classify(t for t in tags if t)
        if issuer is None:
            authors = [raw.get("author")] + [a.get("name") for a in raw.get("authors") or ()]
            issuer = next((s for a in authors if a and (s := self._taxonomy.issuer(a))), None)
        return _Entry(
            key=key,
            lang=lang,
            link=link,
            alternates=alternates,
            translation=Translation(
                lang=lang,
                title=title,
                summary=summary or summary_from_html(body),
                body_html=body,
                url=link,
            ),
            published=published,
            updated=updated if updated != published else None,
            issuer=issuer,
            fields_of_work=fields,
            countries=countries,
        )

    def _item(self, group: list[_Entry], problems: list[str]) -> FetchedItem:
        preferred = primary_language(self._settings.language) or DEFAULT_LANGUAGE
        key, lang = pick_primary(((e.key, e.lang) for e in group), preferred)
        primary = next(e for e in group if (e.key, e.lang) == (key, lang))
        translations: dict[str, Translation] = {}
        for entry in sorted(group, key=lambda e: e is not primary):
            if entry.lang in translations:
                problems.append(
                    f"{self.name}: {self._settings.url}: entry {entry.key!r}: a second "
                    f"{entry.lang!r} version of {key!r}; kept the first"
                )
                continue
            translations[entry.lang] = entry.translation
        updates = [e.updated for e in group if e.updated is not None]
        updated = max(updates) if updates else None
        return FetchedItem(
            key=key,
            published=primary.published,
            translations=tuple(translations.values()),
            updated=updated if updated != primary.published else None,
            issuer=primary.issuer or next((e.issuer for e in group if e.issuer), None),
            fields_of_work=tuple(dict.fromkeys(f for e in group for f in e.fields_of_work)),
            countries=tuple(sorted({c for e in group for c in e.countries})),
            origin=primary.link or self._settings.url,
        )


def _group(entries: list[_Entry]) -> list[list[_Entry]]:
    """Entries that share a key or link to each other as alternates, in feed order."""
    return group_linked(
        entries,
        names=lambda e: (e.key,) if e.link is None else (e.key, e.link),
        links=lambda e: e.alternates,
    )
