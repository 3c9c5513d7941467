"""A feed and its entries, in one language, ready to be written in any format.

Building an entry decides everything a format needs: the translation read in the
feed's language (or a fallback, marked with its own language), text that XML can
carry, sanitized and bounded HTML, localized categories, and the ``updated`` time,
which moves only when what the reader sees of the item changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from publisher.cleaning import clean_text, sanitize_html_bounded, web_link, xml_safe
from publisher.matching.language import language_chain
from publisher.rendering.catalogs import Catalog
from publisher.rendering.formatting import country_name, field_of_work_label, issuer_label
from publisher.store.items import StoredItem, StoredTranslation, entry_id_for
from publisher.taxonomy import Taxonomy

FIELD_SCHEME = "field-of-work"
COUNTRY_SCHEME = "country"


@dataclass(frozen=True, slots=True)
class Category:
    scheme: str  # a URL: {base_url}/feeds/field-of-work or …/country
    term: str  # the slug or ISO code
    label: str  # in the feed's language


@dataclass(frozen=True, slots=True)
class Alternate:
    """The item's page in one language."""

    href: str
    lang: str


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    lang: str  # the language of title, summary and content
    is_fallback: bool  # not in the feed's language
    title: str
    summary: str
    content_html: str
    published: datetime
    updated: datetime
    author: str | None
    link: str | None  # the page of the translation shown, else of another one
    alternates: tuple[Alternate, ...]
    categories: tuple[Category, ...]


@dataclass(frozen=True, slots=True)
class Feed:
    id: str
    locale: str
    title: str
    subtitle: str
    author: str
    self_url: str
    home_url: str
    updated: datetime
    hub: str | None
    entries: tuple[Entry, ...]


def choose(item: StoredItem, locale: str, default_locale: str) -> tuple[StoredTranslation, bool]:
    """The feed language's translation, else the default's, else the first one."""
    own, others = language_chain(locale, (), default_locale)
    for lang in own:
        if (translation := item.translations.get(lang)) is not None:
            return translation, False
    for lang in others:
        if (translation := item.translations.get(lang)) is not None:
            return translation, True
    first = min(item.translations, key=lambda lang: (lang != "en", lang))
    return item.translations[first], True


def entry_updated(item: StoredItem, shown: StoredTranslation) -> datetime:
    """When what a reader of ``shown`` sees last changed: the source's own date, an edit
    of this translation (or its arrival after the item), or an edit of the item's
    dates, issuer or tags. Edits of other translations do not count."""
    stamps = [item.published]
    if item.updated is not None:
        stamps.append(item.updated)
    if shown.changed_at > item.first_seen:
        stamps.append(shown.changed_at)
    if item.meta_changed_at is not None:
        stamps.append(item.meta_changed_at)
    return max(stamps)


@dataclass(frozen=True, slots=True)
class EntryMaker:
    """Builds the entries of one language's feeds."""

    locale: str
    default_locale: str
    catalog: Catalog
    taxonomy: Taxonomy
    entry_id_prefix: str
    scheme_base: str  # {base_url}/feeds/
    max_content: int
    # Labels by (kind, slug): the same few fields, countries and issuers on every entry.
    _labels: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)

    def entry(self, item: StoredItem) -> Entry:
        shown, is_fallback = choose(item, self.locale, self.default_locale)
        # Only web links, and only characters XML can hold: nothing else that reached the
        # store becomes a link in a feed.
        pages = {
            lang: url
            for lang, t in sorted(item.translations.items())
            if (url := web_link(t.url)) is not None
        }
        link = pages.get(shown.lang) or next(iter(pages.values()), None)
        alternates = tuple(Alternate(url, lang) for lang, url in pages.items())
        title = clean_text(xml_safe(shown.title)) or item.id
        return Entry(
            id=item.entry_id or entry_id_for(item.id, self.entry_id_prefix),
            lang=shown.lang,
            is_fallback=is_fallback,
            title=title,
            summary=clean_text(xml_safe(shown.summary), limit=2000),
            content_html=self._content(shown, link),
            published=item.published,
            updated=entry_updated(item, shown),
            author=xml_safe(self._label("issuer", item.issuer)) if item.issuer else None,
            link=link,
            alternates=alternates,
            categories=self._categories(item),
        )

    def _content(self, shown: StoredTranslation, link: str | None) -> str:
        # The store holds sanitized HTML already; cleaning again costs little and keeps
        # the feeds safe from whatever else may have written to the store.
        body = xml_safe(shown.body_html) or escape(xml_safe(shown.summary))
        html, truncated = sanitize_html_bounded(body, limit=self.max_content)
        if truncated:
            more = self.catalog.translations.gettext("Read the full text")
            if link:
                html += f'<p><a href="{escape(link)}">{escape(more)}</a></p>'
            else:
                html += "<p>…</p>"
        return html

    def _categories(self, item: StoredItem) -> tuple[Category, ...]:
        fields = [
            Category(f"{self.scheme_base}{FIELD_SCHEME}", slug, self._label("field", slug))
            for slug in item.fields_of_work
        ]
        countries = [
            Category(f"{self.scheme_base}{COUNTRY_SCHEME}", code, self._label("country", code))
            for code in item.countries
        ]
        return (*fields, *countries)

    def _label(self, kind: str, slug: str) -> str:
        """A field of work's, country's or issuer's name in the maker's language."""
        label = self._labels.get((kind, slug))
        if label is None:
            name = _NAMERS[kind]
            label = self._labels[(kind, slug)] = name(
                slug, taxonomy=self.taxonomy, catalog=self.catalog
            )
        return label


_NAMERS = {"field": field_of_work_label, "country": country_name, "issuer": issuer_label}
