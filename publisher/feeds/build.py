"""Building feeds from the store: one language, one filter, one format at a time.

The items of a filter are the same in every language, so callers that build many
feeds select once per filter (:meth:`FeedBuilder.select`) and render each language
from it (:meth:`FeedBuilder.render`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property

from babel import Locale
from babel.lists import format_list
from sqlalchemy import Connection

from publisher import __version__
from publisher.feeds.formats import write
from publisher.feeds.model import Entry, EntryMaker, Feed
from publisher.feeds.selection import EPOCH, Selection, select_items
from publisher.feeds.spec import FeedFormat, FeedSpec, UnknownFeed
from publisher.rendering.catalogs import Catalog, load_catalog
from publisher.rendering.formatting import country_name, field_of_work_label
from publisher.settings import Settings
from publisher.store.items import StoredItem, load_items
from publisher.taxonomy import Taxonomy

ENTRY_CACHE_SIZE = 50_000


@dataclass(frozen=True, slots=True)
class BuiltFeed:
    data: bytes
    etag: str  # strong: a digest of the bytes, quoted
    last_modified: datetime  # whole seconds, UTC
    entry_ids: tuple[str, ...]

    @classmethod
    def of(cls, data: bytes, selection: Selection) -> BuiltFeed:
        digest = hashlib.sha256(data).hexdigest()[:32]
        return cls(
            data,
            f'"{digest}"',
            selection.last_modified.replace(microsecond=0),
            selection.ids,
        )


class FeedBuilder:
    """Makes every feed of a deployment; cheap to keep, safe to share between threads."""

    def __init__(self, settings: Settings, *, taxonomy: Taxonomy) -> None:
        self.settings = settings
        self.taxonomy = taxonomy
        self._makers: dict[str, EntryMaker] = {}
        self._entries: OrderedDict[tuple[object, ...], Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.organisation = settings.organisation

    @cached_property
    def base(self) -> str:
        """``{base_url}/feeds/``: every feed's URL starts with it."""
        return f"{self.settings.base_url}/feeds/"

    @property
    def locales(self) -> list[str]:
        return list(self.settings.locales)

    def url(self, locale: str, spec: FeedSpec, fmt: FeedFormat) -> str:
        return f"{self.base}{locale}/{spec.path(fmt)}"

    def check_locale(self, locale: str) -> None:
        if locale not in self.settings.locales:
            raise UnknownFeed(f"no feeds in {locale!r}; the languages are {self.locales}")

    # -- selecting and rendering ----------------------------------------------------

    def select(self, conn: Connection, spec: FeedSpec) -> Selection:
        return select_items(conn, spec, limit=self.settings.feeds.entries)

    def load(self, conn: Connection, ids: set[str]) -> dict[str, StoredItem]:
        return {item.id: item for item in load_items(conn, sorted(ids))}

    def render(
        self,
        locale: str,
        spec: FeedSpec,
        fmt: FeedFormat,
        selection: Selection,
        items: Mapping[str, StoredItem],
    ) -> BuiltFeed:
        feed = self.feed(locale, spec, fmt, [items[i] for i in selection.ids if i in items])
        return BuiltFeed.of(write(feed, fmt), selection)

    def build(self, conn: Connection, locale: str, spec: FeedSpec, fmt: FeedFormat) -> BuiltFeed:
        """One feed, from the store as it is now."""
        self.check_locale(locale)
        selection = self.select(conn, spec)
        return self.render(locale, spec, fmt, selection, self.load(conn, set(selection.ids)))

    def feed(self, locale: str, spec: FeedSpec, fmt: FeedFormat, items: list[StoredItem]) -> Feed:
        entries = tuple(self._entry(locale, item) for item in items)
        title, subtitle = self._titles(locale, spec, self._maker(locale).catalog)
        return Feed(
            id=f"{self.settings.tag_prefix}feeds/{locale}/{spec.key}",
            locale=locale,
            title=title,
            subtitle=subtitle,
            author=self.organisation,
            self_url=self.url(locale, spec, fmt),
            home_url=f"{self.settings.base_url}/",
            updated=max((e.updated for e in entries), default=EPOCH),
            hub=self.settings.feeds.websub_hub,
            entries=entries,
        )

    def _entry(self, locale: str, item: StoredItem) -> Entry:
        """An item's entry in ``locale``, made once per version of the item: every
        format and every feed that shows it shares it."""
        key = (locale, item.id, item.changed_at, item.entry_id)
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            made = self._maker(locale).entry(item)
            # One entry per item and language: readers that see the English and the
            # Russian feed must not take one version for an edit of the other.
            entry = replace(made, id=f"{made.id}/{locale}")
            with self._lock:
                self._entries[key] = entry
                while len(self._entries) > ENTRY_CACHE_SIZE:
                    self._entries.popitem(last=False)
        return entry

    def _maker(self, locale: str) -> EntryMaker:
        maker = self._makers.get(locale)
        if maker is None:
            maker = self._makers[locale] = EntryMaker(
                locale=locale,
                default_locale=self.settings.default_locale,
                catalog=self.catalog(locale),
                taxonomy=self.taxonomy,
                entry_id_prefix=self.settings.entry_id_prefix,
                scheme_base=self.base,
                max_content=self.settings.feeds.max_content,
            )
        return maker

    def catalog(self, locale: str) -> Catalog:
        return load_catalog(locale)

    def _titles(self, locale: str, spec: FeedSpec, catalog: Catalog) -> tuple[str, str]:
        gettext = catalog.translations.gettext
        organisation = self.organisation
        if not spec.fields and not spec.countries:
            return (
                gettext("%(organisation)s: all news") % {"organisation": organisation},
                gettext("All news of %(organisation)s.") % {"organisation": organisation},
            )
        topics = self.topics(locale, spec, catalog)
        values = {"organisation": organisation, "topics": topics}
        return (
            gettext("%(organisation)s: %(topics)s") % values,
            gettext("News of %(organisation)s on %(topics)s.") % values,
        )

    def topics(self, locale: str, spec: FeedSpec, catalog: Catalog) -> str:
        """ "Policing or Elections · Uzbekistan or Kazakhstan", in the feed's language."""
        babel_locale = Locale.parse(locale)
        parts = []
        if spec.fields:
            labels = [
                field_of_work_label(slug, taxonomy=self.taxonomy, catalog=catalog)
                for slug in spec.fields
            ]
            parts.append(format_list(labels, style="or", locale=babel_locale))
        if spec.countries:
            names = [
                country_name(code, taxonomy=self.taxonomy, catalog=catalog)
                for code in spec.countries
            ]
            parts.append(format_list(names, style="or", locale=babel_locale))
        return " · ".join(parts)

    def fingerprint(self, locale: str) -> str:
        """What, besides the items, a locale's feeds depend on: when it changes, every
        feed of that locale is built again."""
        settings = self.settings
        catalog = self.catalog(locale)
        words = sorted(repr(message) for message in catalog_messages(catalog))
        parts = [
            __version__,
            settings.base_url,
            settings.default_locale,
            settings.organisation,
            settings.tag_prefix,
            str(settings.feeds.entries),
            str(settings.feeds.max_content),
            str(settings.feeds.websub_hub),
            repr(words),
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def catalog_messages(catalog: Catalog) -> list[tuple[object, object]]:
    """The (msgid, msgstr) pairs of a compiled catalog, for fingerprints."""
    return list(getattr(catalog.translations, "_catalog", {}).items())
