"""The ``html`` source: a news listing page and the article pages it links to.

The pages are the kind in ``seeds/``: a title (``h1``), a lead paragraph, a metadata
block of labels and values ("Issued on:", "Issued by:", "Fields of work:", countries)
and a body. Everything is found with the CSS selectors and label texts of the settings
(:class:`~publisher.settings.HtmlSelectors`, :class:`~publisher.settings.HtmlLabels`),
so another site needs settings, not code.

* **Translations**: an article's ``<link rel="alternate" hreflang="…">`` pages are
  fetched too, and the pages that point at each other are one item whose key is the
  URL of the English page (else of the page in the source's language, else the
  smallest URL): the same from run to run, whatever order the listing has.
* **Dates**: see :func:`~publisher.sources._dates.parse_issued_date`. A date without a
  time of day is taken as 12:00 UTC, so that it shows as the same calendar day in
  nearly every time zone.
* **Text**: bytes are decoded by the HTTP charset, else the page's ``<meta charset>``,
  else UTF-8 (see :func:`~publisher.sources._pages.decode_html`); the title and summary
  become one clean line, the body sanitized HTML.
* **Problems**: a page that cannot be fetched, or lacks its title or date, is reported
  and skipped; the other articles still count. A listing that cannot be fetched fails
  the whole source.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urldefrag

import lxml.html
from lxml import etree
from lxml.cssselect import CSSSelector

from publisher.cleaning import MAX_SUMMARY, clean_text, sanitize_html, summary_from_html
from publisher.errors import SourceError
from publisher.items import FetchedItem, Translation
from publisher.settings import HtmlSourceSettings
from publisher.sources import SourceResult
from publisher.sources._grouping import group_linked
from publisher.sources._http import HttpClient, HttpResponse
from publisher.sources._language import pick_primary, primary_language
from publisher.sources._metadata import MetadataReader
from publisher.sources._pages import parse_page, web_url
from publisher.sources._tags import Tagger
from publisher.taxonomy import Taxonomy

# A page may name at most this many translations; more is a broken template.
MAX_ALTERNATES = 32
_PAGE_TYPES = {"text/html", "application/xhtml+xml"}


@dataclass(frozen=True, slots=True)
class _Page:
    """One article page, read."""

    url: str  # after redirects
    requested: str  # as linked
    lang: str
    translation: Translation
    published: datetime
    issuer: str | None
    fields_of_work: tuple[str, ...]
    countries: tuple[str, ...]
    alternates: tuple[str, ...]


class HtmlSource:
    """A listing page and its article pages, read with CSS selectors and label texts."""

    def __init__(
        self, settings: HtmlSourceSettings, *, taxonomy: Taxonomy, http: HttpClient
    ) -> None:
        self._settings = settings
        self._taxonomy = taxonomy
        self._http = http
        self._tagger = Tagger(taxonomy)
        # Compiled once; the "html" translator matches element names case-insensitively.
        self._select = {
            name: CSSSelector(selector, translator="html")
            for name, selector in settings.selectors.model_dump().items()
        }
        labels = settings.labels
        self._metadata = MetadataReader(
            labels, label=self._select["meta_label"], value=self._select["meta_value"]
        )
        self._date_label = labels.issued_on[0] if labels.issued_on else "Issued on"

    @property
    def name(self) -> str:
        return self._settings.name

    async def fetch(self, state: Mapping[str, str]) -> SourceResult:
        listing = await self._http.get(
            self._settings.listing_url,
            etag=state.get("etag"),
            last_modified=state.get("last_modified"),
            source=self.name,
        )
        if listing.not_modified:
            return SourceResult(items=(), not_modified=True, state=dict(state))
        new_state = {}
        if listing.etag:
            new_state["etag"] = listing.etag
        if listing.last_modified:
            new_state["last_modified"] = listing.last_modified
        links = self._article_links(listing)
        problems: list[str] = []
        if not links:
            problems.append(
                f"{self.name}: {listing.url}: no article links match the selector "
                f"{self._settings.selectors.article_links!r}"
            )
        pages = await self._read_pages(links, problems)
        items = [self._item(group) for group in _group(pages)]
        return SourceResult(items=tuple(items), problems=tuple(problems), state=new_state)

    # -- the listing -----------------------------------------------------------------------

    def _article_links(self, listing: HttpResponse) -> list[str]:
        try:
            doc = parse_page(listing)
        except (etree.ParserError, ValueError) as exc:
            raise SourceError(f"{self.name}: {listing.url}: not a readable page: {exc}") from exc
        links: dict[str, None] = {}
        for anchor in self._select["article_links"](doc):
            url = web_url(anchor.get("href"))
            if url is not None and url != urldefrag(listing.url).url:
                links[url] = None
            if len(links) >= self._settings.max_articles:
                break
        return list(links)

    # -- the articles ----------------------------------------------------------------------

    async def _read_pages(self, links: list[str], problems: list[str]) -> list[_Page]:
        """The listed pages, then the translations they name (one level: translations
        name each other, so going further finds nothing new)."""
        pages: list[_Page] = []
        seen = set(links)
        wave = links
        for _ in range(2):
            results = await asyncio.gather(*(self._read_page(url) for url in wave))
            wave = []
            for result in results:
                if isinstance(result, str):
                    problems.append(result)
                    continue
                pages.append(result)
                seen.add(result.url)
                for alternate in result.alternates:
                    if alternate not in seen:
                        seen.add(alternate)
                        wave.append(alternate)
        return pages

    async def _read_page(self, url: str) -> _Page | str:
        """The page, or a problem line saying why there is none."""
        try:
            response = await self._http.get(url, source=self.name)
        except SourceError as exc:
            return str(exc)
        return await asyncio.to_thread(self._parse_page, url, response)

    def _parse_page(self, requested: str, response: HttpResponse) -> _Page | str:
        where = f"{self.name}: {response.url}"
        try:
            doc = parse_page(response)
        except (etree.ParserError, ValueError) as exc:
            return f"{where}: not a readable page ({exc}); skipped"
        lang = (
            primary_language(
                doc.get("lang") or doc.get("{http://www.w3.org/XML/1998/namespace}lang")
            )
            or primary_language(self._settings.language)
            or "en"
        )
        for element in doc.xpath("//script | //style | //template"):
            element.drop_tree()  # their text is not the page's text
        title = clean_text(_first_text(self._select["title"](doc)))
        meta = self._metadata.read(doc)
        missing = [] if title else [f"the title ({self._settings.selectors.title!r})"]
        if "issued_on" not in meta:
            missing.append(f"the {self._date_label!r} date")
        if missing:
            return f"{where}: missing {' and '.join(missing)}; skipped"
        published = meta["issued_on"].date(lang)
        if published is None:
            return (
                f"{where}: cannot read the {self._date_label!r} date "
                f"{meta['issued_on'].text!r}; skipped"
            )
        issuer = None
        if "issued_by" in meta:
            issuer = self._taxonomy.issuer(meta["issued_by"].text)
        names = [p for k in ("fields_of_work", "countries") if k in meta for p in meta[k].parts()]
        fields, countries = self._tagger.classify(names)
        bodies = self._select["body"](doc)
        body = sanitize_html(lxml.html.tostring(bodies[0], encoding="unicode")) if bodies else ""
        summary = clean_text(_first_text(self._select["summary"](doc)), limit=MAX_SUMMARY)
        return _Page(
            url=response.url,
            requested=requested,
            lang=lang,
            translation=Translation(
                lang=lang,
                title=title,
                summary=summary or summary_from_html(body),
                body_html=body,
                url=response.url,
            ),
            published=published,
            issuer=issuer,
            fields_of_work=fields,
            countries=countries,
            alternates=self._alternates(doc, response.url),
        )

    def _alternates(self, doc: Any, url: str) -> tuple[str, ...]:
        own = urldefrag(url).url
        out: dict[str, None] = {}
        for link in self._select["translations"](doc):
            kind = (link.get("type") or "text/html").split(";")[0].strip().lower()
            if "stylesheet" in (link.get("rel") or "").lower() or kind not in _PAGE_TYPES:
                continue  # a feed or a style sheet, not a translation of the page
            if primary_language(link.get("hreflang")) is None:
                continue  # "x-default" and unknown tags
            href = web_url(link.get("href"))
            if href is not None and href != own:
                out[href] = None
        return tuple(out)[:MAX_ALTERNATES]

    # -- items -----------------------------------------------------------------------------

    def _item(self, group: list[_Page]) -> FetchedItem:
        preferred = primary_language(self._settings.language) or "en"
        key, lang = pick_primary(((p.url, p.lang) for p in group), preferred)
        primary = next(p for p in group if (p.url, p.lang) == (key, lang))
        translations: dict[str, Translation] = {}
        for page in sorted(group, key=lambda p: p is not primary):
            translations.setdefault(page.lang, page.translation)
        return FetchedItem(
            key=key,
            published=primary.published,
            translations=tuple(translations.values()),
            issuer=primary.issuer or next((p.issuer for p in group if p.issuer), None),
            fields_of_work=tuple(dict.fromkeys(f for p in group for f in p.fields_of_work)),
            countries=tuple(sorted({c for p in group for c in p.countries})),
            origin=key,
        )


def _group(pages: list[_Page]) -> list[list[_Page]]:
    """Pages that link to each other as translations, in the order they were read."""
    return group_linked(pages, names=lambda p: (p.url, p.requested), links=lambda p: p.alternates)


def _first_text(elements: Iterable[Any]) -> str:
    return next((text for e in elements if (text := e.text_content()).strip()), "")
