"""The items of a feed, straight from the store's tag index, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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
