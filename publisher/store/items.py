"""Writing fetched items into the store, and reading them back.

An item's id is ours: assigned at first sight from the source's key and never changed.
Collecting the same content twice writes nothing; an edit is detected by content hash
and updates the item in place (its id, its ``first_seen`` and its other translations
stay as they were), so an edited item is never taken for a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection, String, delete, insert, literal, select, update

from publisher.items import FetchedItem, Translation, translation_hash
from publisher.store.schema import item_tags, items, translations
from publisher.taxonomy import slugify

_MAX_ID = 120


@dataclass(frozen=True, slots=True)
class SaveCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as the store holds it: the input of matching, rendering and feeds."""

    id: str
    source: str
    published: datetime
    updated: datetime | None
    issuer: str | None
    fields_of_work: tuple[str, ...]
    countries: tuple[str, ...]
    first_seen: datetime
    changed_at: datetime
    translations: dict[str, StoredTranslation]
    meta_changed_at: datetime | None = None  # dates, issuer or tags edited after first_seen
    entry_id: str | None = None  # the feeds' tag: URI, once assigned


@dataclass(frozen=True, slots=True)
class StoredTranslation:
    lang: str
    title: str
    summary: str
    body_html: str
    url: str | None
    first_seen: datetime
    changed_at: datetime


def save_items(
    conn: Connection, source: str, fetched: Iterable[FetchedItem], *, now: datetime
) -> SaveCounts:
    """Insert new items, update edited ones, leave the rest; count each kind."""
    known = {
        row.source_key: (row.id, row.item_hash)
        for row in conn.execute(
            select(items.c.source_key, items.c.id, items.c.item_hash).where(
                items.c.source == source
            )
        )
    }
    new = updated = unchanged = 0
    for item in fetched:
        if item.key in known:
            item_id, old_hash = known[item.key]
            if _update(conn, item_id, item, old_hash, now=now):
                updated += 1
            else:
                unchanged += 1
        else:
            item_id = _assign_id(conn, source, item.key)
            _insert(conn, item_id, source, item, now=now)
            known[item.key] = (item_id, item.item_hash())
            new += 1
    return SaveCounts(new=new, updated=updated, unchanged=unchanged)


def _assign_id(conn: Connection, source: str, key: str) -> str:
    """A readable id from the key (the file's base name, the URL's path), made unique."""
    if "://" in key:
        parts = urlsplit(key)
        readable = slugify(f"{parts.path} {parts.query}") or slugify(parts.netloc)
    else:
        readable = slugify(key)
    readable = readable[:_MAX_ID].strip("-") or "item"
    taken = conn.execute(select(items.c.id).where(items.c.id == readable)).first()
    if taken is None:
        return readable
    digest = hashlib.sha256(f"{source}\0{key}".encode()).hexdigest()[:10]
    return f"{readable[: _MAX_ID - 11]}-{digest}"


def _insert(
    conn: Connection, item_id: str, source: str, item: FetchedItem, *, now: datetime
) -> None:
    conn.execute(
        insert(items).values(
            id=item_id,
            source=source,
            source_key=item.key,
            first_seen=now,
            changed_at=now,
            origin=item.origin,
            **_item_values(item),
        )
    )
    conn.execute(
        insert(translations),
        [_translation_values(item_id, t, now=now, first_seen=now) for t in item.translations],
    )
    _write_tags(conn, item_id, item)


def _update(
    conn: Connection, item_id: str, item: FetchedItem, old_hash: str, *, now: datetime
) -> bool:
    changed = False
    if item.item_hash() != old_hash:
        conn.execute(
            update(items)
            .where(items.c.id == item_id)
            .values(changed_at=now, meta_changed_at=now, origin=item.origin, **_item_values(item))
        )
        conn.execute(delete(item_tags).where(item_tags.c.item_id == item_id))
        _write_tags(conn, item_id, item)
        changed = True
    stored = {
        row.lang: row.content_hash
        for row in conn.execute(
            select(translations.c.lang, translations.c.content_hash).where(
                translations.c.item_id == item_id
            )
        )
    }
    for translation in item.translations:
        digest = translation_hash(translation)
        if translation.lang not in stored:
            conn.execute(
                insert(translations).values(
                    _translation_values(item_id, translation, now=now, first_seen=now)
                )
            )
        elif stored[translation.lang] != digest:
            values = _translation_values(item_id, translation, now=now, first_seen=None)
            conn.execute(
                update(translations)
                .where(translations.c.item_id == item_id, translations.c.lang == translation.lang)
                .values(values)
            )
        else:
            continue
        changed = True
    if changed and item.item_hash() == old_hash:
        conn.execute(update(items).where(items.c.id == item_id).values(changed_at=now))
    return changed


def _item_values(item: FetchedItem) -> dict[str, object]:
    return {
        "published": item.published,
        "updated": item.updated,
        "issuer": item.issuer,
        "fields_of_work": list(item.fields_of_work),
        "countries": list(item.countries),
        "item_hash": item.item_hash(),
    }


def _translation_values(
    item_id: str, translation: Translation, *, now: datetime, first_seen: datetime | None
) -> dict[str, object]:
    values: dict[str, object] = {
        "item_id": item_id,
        "lang": translation.lang,
        "title": translation.title,
        "summary": translation.summary,
        "body_html": translation.body_html,
        "url": translation.url,
        "content_hash": translation_hash(translation),
        "changed_at": now,
    }
    if first_seen is not None:
        values["first_seen"] = first_seen
    return values


def _write_tags(conn: Connection, item_id: str, item: FetchedItem) -> None:
    rows = [{"item_id": item_id, "kind": "field", "value": f} for f in set(item.fields_of_work)]
    rows += [{"item_id": item_id, "kind": "country", "value": c} for c in set(item.countries)]
    if rows:
        conn.execute(insert(item_tags), rows)


def entry_id_for(item_id: str, prefix: str) -> str:
    """The entry id an item gets when it has none yet: ``prefix`` + its id."""
    return prefix + item_id


def assign_entry_ids(conn: Connection, prefix: str) -> int:
    """Give every item without one its feed entry id (``prefix`` + item id); never
    touch an id already given, so a later change of ``prefix`` leaves old entries be."""
    result = conn.execute(
        update(items)
        .where(items.c.entry_id.is_(None))
        .values(entry_id=literal(prefix, String) + items.c.id)
    )
    return result.rowcount


def load_items(
    conn: Connection, ids: Sequence[str] | None = None, *, seen_since: datetime | None = None
) -> list[StoredItem]:
    """Items with their translations, newest first: all of them, those in ``ids``, or
    those first seen at ``seen_since`` or later."""
    query = select(items).order_by(items.c.published.desc(), items.c.id)
    text_query = select(translations)
    if ids is not None:
        query = query.where(items.c.id.in_(ids))
        text_query = text_query.where(translations.c.item_id.in_(ids))
    if seen_since is not None:
        query = query.where(items.c.first_seen >= seen_since)
        text_query = text_query.where(
            translations.c.item_id.in_(select(items.c.id).where(items.c.first_seen >= seen_since))
        )
    texts: dict[str, dict[str, StoredTranslation]] = {}
    for row in conn.execute(text_query):
        texts.setdefault(row.item_id, {})[row.lang] = StoredTranslation(
            lang=row.lang,
            title=row.title,
            summary=row.summary,
            body_html=row.body_html,
            url=row.url,
            first_seen=row.first_seen,
            changed_at=row.changed_at,
        )
    return [
        StoredItem(
            id=row.id,
            source=row.source,
            published=row.published,
            updated=row.updated,
            issuer=row.issuer,
            fields_of_work=tuple(row.fields_of_work),
            countries=tuple(row.countries),
            first_seen=row.first_seen,
            changed_at=row.changed_at,
            translations=texts.get(row.id, {}),
            meta_changed_at=row.meta_changed_at,
            entry_id=row.entry_id,
        )
        for row in conn.execute(query)
    ]
