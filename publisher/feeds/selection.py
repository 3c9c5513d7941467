"""The items of a feed, straight from the store's tag index, newest first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby

from sqlalchemy import Connection, Exists, Select, and_, exists, func, or_, select

from publisher.feeds.spec import FeedSpec
from publisher.store.schema import item_tags, items, source_runs

# What an empty store's feeds say they were last changed: nothing was, ever.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Selection:
    """The ids of a feed's entries and when that set or any of them last changed."""

    ids: tuple[str, ...]
    last_modified: datetime


def _tagged(kind: str, values: Sequence[str]) -> Exists:
    return exists().where(
        item_tags.c.item_id == items.c.id,
        item_tags.c.kind == kind,
        item_tags.c.value.in_(values),
    )


def _untagged(kind: str) -> Exists:
    return exists().where(item_tags.c.item_id == items.c.id, item_tags.c.kind == kind)


def _query(spec: FeedSpec, limit: int) -> Select[tuple[str, datetime]]:
    query = select(items.c.id, items.c.published).order_by(items.c.published.desc(), items.c.id)
    if spec.fields:
        query = query.where(_tagged("field", spec.fields))
    if spec.countries:
        query = query.where(or_(_tagged("country", spec.countries), ~_untagged("country")))
    return query.limit(limit)


def select_items(conn: Connection, spec: FeedSpec, *, limit: int) -> Selection:
    """The newest ``limit`` items of ``spec`` and the feed's Last-Modified.

    Last-Modified is the latest change among the items the feed shows and the items
    edited within its time span (an edit can take an item out of a feed). It moves
    whenever the feed's content can have changed, so it never lets a reader keep a
    stale copy; it may move without a change, which costs one full response.
    """
    rows = conn.execute(_query(spec, limit)).all()
    ids = tuple(row.id for row in rows)
    edited = items.c.changed_at > items.c.first_seen
    changed = select(func.max(items.c.changed_at))
    within = or_(items.c.id.in_(ids), edited) if ids else edited
    if len(rows) == limit:  # a full window: edits older than its oldest item do not matter
        within = and_(within, items.c.published >= rows[-1].published)
    stamp = conn.execute(changed.where(within)).scalar()
    return Selection(ids, stamp if stamp is not None else EPOCH)


# How many items select_ids reads before it leaves the feeds not full yet (those of
# rare tags) to a query each, which the tag index serves better than a scan.
SCAN_ITEMS = 5_000


def select_ids(
    conn: Connection, specs: Iterable[FeedSpec], *, limit: int, scan: int = SCAN_ITEMS
) -> dict[FeedSpec, tuple[str, ...]]:
    """The ids :func:`select_items` gives each of ``specs``, without Last-Modified.

    One pass over the items, newest first, hands each to the feeds it belongs to until
    every feed is full: a static build selects its feeds in one query, not one each.
    """
    feeds = list(dict.fromkeys(specs))
    chosen: list[list[str]] = [[] for _ in feeds]
    index = _SpecIndex(feeds)  # of positions in feeds: ints hash faster than FeedSpecs
    open_feeds = set(range(len(feeds))) if limit > 0 else set()
    query = (
        select(items.c.id, item_tags.c.kind, item_tags.c.value)
        .select_from(items.outerjoin(item_tags, item_tags.c.item_id == items.c.id))
        .order_by(items.c.published.desc(), items.c.id)
    )
    cut_short = scan <= 0  # items left unread: the feeds not full yet may want them
    if open_feeds and not cut_short:
        with conn.execute(query, execution_options={"yield_per": 1000}) as result:
            # An item's rows come together: no two items share (published, id).
            for read, (item_id, rows) in enumerate(groupby(result, key=lambda row: row[0]), 1):
                fields, countries = set(), set()
                for _, kind, value in rows:
                    if kind == "field":
                        fields.add(value)
                    elif kind == "country":
                        countries.add(value)
                for position in index.matching(fields, countries) & open_feeds:
                    ids = chosen[position]
                    ids.append(item_id)
                    if len(ids) == limit:
                        open_feeds.discard(position)
                if not open_feeds:
                    break
                if read == scan:
                    cut_short = True
                    break
    return {
        spec: tuple(row.id for row in conn.execute(_query(spec, limit)))
        if cut_short and position in open_feeds
        else tuple(chosen[position])
        for position, spec in enumerate(feeds)
    }


class _SpecIndex:
    """Which feeds (by position) an item belongs to, from its tags, without testing
    every feed."""

    def __init__(self, specs: Sequence[FeedSpec]) -> None:
        self.everything: set[int] = set()  # no filter
        self.by_field: defaultdict[str, list[tuple[int, FeedSpec]]] = defaultdict(list)
        self.by_country: defaultdict[str, set[int]] = defaultdict(set)  # no fields
        self.countrywide: set[int] = set()  # countries, no fields: take untagged items
        for position, spec in enumerate(specs):
            if spec.fields:
                for slug in spec.fields:
                    self.by_field[slug].append((position, spec))
            elif spec.countries:
                self.countrywide.add(position)
                for code in spec.countries:
                    self.by_country[code].add(position)
            else:
                self.everything.add(position)

    def matching(self, fields: set[str], countries: set[str]) -> set[int]:
        """The feeds of an item with these tags: README "Who gets what" (an item naming
        no country belongs to every country's feed)."""
        found = set(self.everything)
        for slug in fields:
            for position, spec in self.by_field.get(slug, ()):
                if not spec.countries or not countries or not countries.isdisjoint(spec.countries):
                    found.add(position)
        if not countries:
            found |= self.countrywide
        for code in countries:
            found |= self.by_country.get(code, set())
        return found


def store_revision(conn: Connection) -> tuple[object, ...]:
    """Changes when any item is added or changed: the key of the web app's feed cache.

    The newest change time alone is not enough: sources collect side by side and each
    stamps its items with its own start, so a later commit can carry an older stamp.
    Every collection records its run in the same transaction as its items, and runs
    are only ever added: their count moves with every commit that can change a feed.
    """
    row = conn.execute(
        select(
            func.max(items.c.changed_at),
            func.count(items.c.id),
            select(func.count()).select_from(source_runs).scalar_subquery(),
        )
    ).one()
    return tuple(row)
