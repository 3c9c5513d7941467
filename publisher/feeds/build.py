"""Building feeds from the store: one language, one filter, one format at a time.

The items of a filter are the same in every language, so callers that build many
feeds select once per filter (:meth:`FeedBuilder.select`) and render each language
from it (:meth:`FeedBuilder.render`).

An item's entry in a language is made once per version of the item, and written once
per format: the builder keeps both, so a feed is its head around entries written
already, and the rebuild after one new item writes that item's entries only.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property

from babel import Locale
from babel.lists import format_list
from sqlalchemy import Connection

from publisher import __version__
from publisher.feeds.formats import assemble, write_entry
from publisher.feeds.model import Entry, EntryMaker, Feed
from publisher.feeds.selection import EPOCH, Selection, select_ids, select_items
from publisher.feeds.spec import FeedFormat, FeedSpec, UnknownFeed
from publisher.rendering.catalogs import Catalog, load_catalog
from publisher.rendering.formatting import country_name, field_of_work_label
from publisher.settings import Settings
from publisher.store.items import StoredItem, load_items
from publisher.taxonomy import Taxonomy

# What the entry cache may hold, in bytes of entry text and written entries: every
# item in the standard feeds of nine languages (about 1,000 items with bodies of a few
# kilobytes: some 150 MB) with room to spare. The least recently used go first.
ENTRY_CACHE_BYTES = 384 * 2**20
_ENTRY_OVERHEAD = 1024  # what an entry's objects take besides its texts, roughly


@dataclass(slots=True)
class _CachedEntry:
    """An item's entry in one language and its bytes in each format written so far."""

    key: tuple[object, ...]
    entry: Entry
    written: dict[FeedFormat, bytes] = field(default_factory=dict)
    size: int = 0


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
        self._entries: OrderedDict[tuple[object, ...], _CachedEntry] = OrderedDict()
        self._cached_bytes = 0
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

    def select_ids(
        self, conn: Connection, specs: Iterable[FeedSpec]
    ) -> dict[FeedSpec, tuple[str, ...]]:
        """The ids of many feeds at once, without their Last-Modified."""
        return select_ids(conn, specs, limit=self.settings.feeds.entries)

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
        return BuiltFeed.of(self.document(locale, spec, fmt, selection.ids, items), selection)

    def document(
        self,
        locale: str,
        spec: FeedSpec,
        fmt: FeedFormat,
        ids: Sequence[str],
        items: Mapping[str, StoredItem],
    ) -> bytes:
        """The bytes of the feed of the items ``ids`` (from ``items``): its head around
        its entries, each written once."""
        cached = [self._cached(locale, items[i]) for i in ids if i in items]
        feed = self._head(locale, spec, fmt, [c.entry for c in cached])
        return assemble(feed, fmt, [self._written(c, fmt) for c in cached])

    def build(self, conn: Connection, locale: str, spec: FeedSpec, fmt: FeedFormat) -> BuiltFeed:
        """One feed, from the store as it is now."""
        self.check_locale(locale)
        selection = self.select(conn, spec)
        return self.render(locale, spec, fmt, selection, self.load(conn, set(selection.ids)))

    def feed(self, locale: str, spec: FeedSpec, fmt: FeedFormat, items: list[StoredItem]) -> Feed:
        entries = [self._cached(locale, item).entry for item in items]
        return replace(self._head(locale, spec, fmt, entries), entries=tuple(entries))

    def _head(self, locale: str, spec: FeedSpec, fmt: FeedFormat, entries: list[Entry]) -> Feed:
        """The feed of ``entries`` but without them: what its document's head says."""
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
            entries=(),
        )

    def _cached(self, locale: str, item: StoredItem) -> _CachedEntry:
        """An item's entry in ``locale``, made once per version of the item: every
        format and every feed that shows it shares it. Any change to an item moves its
        ``changed_at`` (``publisher.store.items``), so an edited item is a new key."""
        key = (locale, item.id, item.changed_at, item.entry_id)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        made = self._maker(locale).entry(item)
        # One entry per item and language: readers that see the English and the
        # Russian feed must not take one version for an edit of the other.
        entry = replace(made, id=f"{made.id}/{locale}")
        size = _ENTRY_OVERHEAD + len(entry.content_html) + len(entry.title) + len(entry.summary)
        with self._lock:
            cached = self._entries.get(key)  # made by another thread meanwhile
            if cached is None:
                cached = self._entries[key] = _CachedEntry(key, entry, size=size)
                self._grow(size)
        return cached

    def _written(self, cached: _CachedEntry, fmt: FeedFormat) -> bytes:
        """The entry's bytes in ``fmt``, written once."""
        data = cached.written.get(fmt)
        if data is None:
            data = write_entry(cached.entry, fmt)
            with self._lock:
                if fmt not in cached.written:
                    cached.written[fmt] = data
                    cached.size += len(data)
                    if self._entries.get(cached.key) is cached:  # not evicted meanwhile
                        self._grow(len(data))
        return data

    def _grow(self, size: int) -> None:
        """Count ``size`` more bytes in the cache; drop the least recently used entries
        beyond ENTRY_CACHE_BYTES. Called with the lock held."""
        self._cached_bytes += size
        while self._cached_bytes > ENTRY_CACHE_BYTES and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._cached_bytes -= dropped.size

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
