"""The outbox: every message due, written before anything is sent.

One row per message. A body shared by many recipients (a digest for one rule, an alert
for one item in one language) is stored once in ``bodies``, and what many bodies show
alike (an item's block) once in ``segments``, which bodies name by digest; the row holds
what is personal (recipient, Message-ID) and its delivery state. Workers *claim* rows by taking
a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers), send,
and mark them; a crashed worker's rows are claimed again once its lease has run out.

Guarantees kept here, by unique keys rather than by care:
- at most one message per recipient and ``dedupe_key`` (``alert:<item>``,
  ``daily:<period>``): a digest period or an alert is never queued twice;
- ``sent_items`` records every item queued for a recipient: no item twice to one person.

The outbox remembers ``[outbox] keep`` (30 days): :func:`prune` deletes what finished
before that, and planning mails no item collected before it, so both the tables and a
pass's reading of them stay bounded however long the service runs.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Connection,
    Delete,
    Engine,
    Row,
    Table,
    and_,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from publisher.store.schema import bodies, outbox, segments, sent_items


class Status(StrEnum):
    QUEUED = "queued"  # waiting for next_attempt_at
    SENDING = "sending"  # leased by a worker until lease_until
    SENT = "sent"  # the server answered 250
    FAILED = "failed"  # a 5xx, or too many 4xx: will not be tried again
    SKIPPED = "skipped"  # the recipient unsubscribed or was suppressed before sending


@dataclass(frozen=True, slots=True)
class NewMessage:
    recipient: str
    dedupe_key: str
    item_ids: tuple[str, ...]
    message_id: str


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    recipient: str
    message_id: str
    attempts: int
    body: bytes


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """4xx → retry with exponential backoff and jitter, up to ``max_attempts``."""

    base: timedelta = timedelta(minutes=1)
    ceiling: timedelta = timedelta(hours=6)
    max_attempts: int = 8

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait after the ``attempts``-th failure: full backoff halved, plus jitter."""
        factor: int = 2 ** max(attempts - 1, 0)
        full = min(self.ceiling, self.base * factor)
        return full / 2 + full / 2 * rng.random()


# Values bound in one IN (...): well under SQLite's and PostgreSQL's limits.
_CHUNK = 500

# sent_items rows, for the driver's executemany (SQLite's placeholders, then psycopg's).
_INSERT_SENT_ITEMS_QMARK = (
    "INSERT INTO sent_items (recipient_key, item_id, outbox_id) VALUES (?, ?, ?) "
    "ON CONFLICT (recipient_key, item_id) DO NOTHING"
)
_INSERT_SENT_ITEMS = _INSERT_SENT_ITEMS_QMARK.replace("?", "%s")


def _insert_ignoring_conflicts(
    conn: Connection, table: Table, rows: list[dict[str, object]], *, keys: Sequence[str]
) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    if rows:
        conn.execute(dialect.insert(table).on_conflict_do_nothing(index_elements=keys), rows)


def enqueue(conn: Connection, body: bytes, messages: Iterable[NewMessage], *, now: datetime) -> int:
    """Queue ``messages`` sharing ``body``; returns how many were new (see enqueue_many)."""
    return enqueue_many(conn, [(body, list(messages))], now=now)


def enqueue_many(
    conn: Connection, batch: Sequence[tuple[bytes, Sequence[NewMessage]]], *, now: datetime
) -> int:
    """Queue each body's messages, a few statements for the whole batch; returns how many
    rows were new.

    A message whose (recipient, dedupe_key) is already queued is left out, and so are
    its items: ``sent_items`` gets the items of the rows this call inserted (those the
    insert returns), in the same transaction as the rows. The segments the bodies name
    must be stored already (:func:`save_segments`), in this transaction or before.
    """
    digests = [hashlib.sha256(body).hexdigest() for body, _ in batch]
    contents = dict(zip(digests, (body for body, _ in batch), strict=True))
    _insert_ignoring_conflicts(
        conn,
        bodies,
        [{"digest": d, "content": c, "created_at": now} for d, c in contents.items()],
        keys=["digest"],
    )
    body_ids: dict[str, int] = {}
    wanted = list(contents)
    for start in range(0, len(wanted), _CHUNK):
        for digest, body_id in conn.execute(
            select(bodies.c.digest, bodies.c.id).where(
                bodies.c.digest.in_(wanted[start : start + _CHUNK])
            )
        ):
            body_ids[digest] = body_id
    rows: list[dict[str, Any]] = []
    items: dict[tuple[str, str], tuple[str, ...]] = {}
    for digest, (_, messages) in zip(digests, batch, strict=True):
        for m in messages:
            key = m.recipient.lower()
            if (key, m.dedupe_key) in items:
                continue  # as if queued one after the other: the first one stays
            items[key, m.dedupe_key] = m.item_ids
            rows.append(
                {
                    "body_id": body_ids[digest],
                    "recipient": m.recipient,
                    "recipient_key": key,
                    "message_id": m.message_id,
                    "dedupe_key": m.dedupe_key,
                    "item_ids": list(m.item_ids),
                    "status": Status.QUEUED.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # RETURNING gives exactly the rows inserted: a conflicting one is not returned.
    inserted = conn.execute(
        dialect.insert(outbox)
        .on_conflict_do_nothing(index_elements=["recipient_key", "dedupe_key"])
        .returning(outbox.c.id, outbox.c.recipient_key, outbox.c.dedupe_key),
        rows,
    ).all()
    sent = [
        (row.recipient_key, item_id, row.id)
        for row in inserted
        for item_id in items[row.recipient_key, row.dedupe_key]
    ]
    if sent:
        # Plain SQL for the driver's executemany: a digest of 200 items makes 200 rows,
        # and SQLAlchemy's handling of each row's parameters cost more than the insert.
        qmark = conn.dialect.paramstyle == "qmark"
        conn.exec_driver_sql(_INSERT_SENT_ITEMS_QMARK if qmark else _INSERT_SENT_ITEMS, sent)
    return len(inserted)


def save_segments(conn: Connection, contents: Mapping[bytes, bytes], *, now: datetime) -> None:
    """Store segments not stored yet, and mark every one used ``now`` (a segment's digest
    names its bytes: an equal one stored before keeps its bytes)."""
    if not contents:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(segments)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["digest"],
            set_={"used_at": insert.excluded.used_at},
            where=segments.c.used_at < insert.excluded.used_at,  # not once per process
        ),
        [{"digest": d, "content": c, "used_at": now} for d, c in contents.items()],
    )


def load_segments(conn: Connection, digests: Iterable[bytes]) -> dict[bytes, bytes]:
    """The stored bytes of those segments that are stored, by digest."""
    wanted = list(dict.fromkeys(digests))
    found: dict[bytes, bytes] = {}
    for start in range(0, len(wanted), _CHUNK):
        for digest, content in conn.execute(
            select(segments.c.digest, segments.c.content).where(
                segments.c.digest.in_(wanted[start : start + _CHUNK])
            )
        ):
            found[bytes(digest)] = bytes(content)
    return found


def already_sent(conn: Connection, recipient_keys: Iterable[str]) -> dict[str, set[str]]:
    """Item ids already queued for each of these (lower-cased) addresses."""
    keys = list(recipient_keys)
    sent: dict[str, set[str]] = {key: set() for key in keys}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        for row in conn.execute(
            select(sent_items.c.recipient_key, sent_items.c.item_id).where(
                sent_items.c.recipient_key.in_(chunk)
            )
        ):
            sent[row.recipient_key].add(row.item_id)
    return sent


def claim(
    conn: Connection, *, owner: str, limit: int, lease: timedelta, now: datetime
) -> list[Claimed]:
    """Lease up to ``limit`` due rows: queued ones whose time has come, and rows whose
    lease has run out (their worker died). Commit right after, before sending."""
    due = or_(
        and_(outbox.c.status == Status.QUEUED.value, outbox.c.next_attempt_at <= now),
        and_(outbox.c.status == Status.SENDING.value, outbox.c.lease_until < now),
    )
    candidates = select(outbox.c.id).where(due).order_by(outbox.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        # Concurrent workers skip each other's rows instead of waiting for them.
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(conn.execute(candidates).scalars())
    if not ids:
        return []
    # The status is checked again: on SQLite another writer may have come between.
    claimed = list(
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids), due)
            .values(status=Status.SENDING.value, lease_owner=owner, lease_until=now + lease)
            .returning(
                outbox.c.id,
                outbox.c.recipient,
                outbox.c.message_id,
                outbox.c.attempts,
                outbox.c.body_id,
            )
        )
    )
    body_ids = {row.body_id for row in claimed}
    contents = {
        row.id: row.content
        for row in conn.execute(
            select(bodies.c.id, bodies.c.content).where(bodies.c.id.in_(body_ids))
        )
    }
    return sorted(
        (
            Claimed(row.id, row.recipient, row.message_id, row.attempts, contents[row.body_id])
            for row in claimed
        ),
        key=lambda c: c.id,
    )


# A 250, as plain SQL for the driver's executemany (SQLite's placeholders, then
# psycopg's): a worker records every 250 this way, a round of answers at a time, and
# SQLAlchemy's handling of each row's parameters cost as much as the update.
_MARK_SENT_QMARK = (
    "UPDATE outbox SET status = 'sent', attempts = attempts + 1, "
    "finished_at = ?, lease_owner = NULL, lease_until = NULL, last_code = 250, "
    "last_error = NULL WHERE id = ?"
)
_MARK_SENT = _MARK_SENT_QMARK.replace("?", "%s")


def mark_sent(conn: Connection, message: int, *, now: datetime) -> None:
    """The server took the message (250). Recorded whoever holds the lease: it was sent."""
    mark_all_sent(conn, [(message, now)])


def mark_all_sent(conn: Connection, sent: Sequence[tuple[int, datetime]]) -> None:
    """:func:`mark_sent` for each (message, when its server took it), in one statement
    run by the driver for every row."""
    if not sent:
        return
    dialect = conn.dialect
    # The column type's own conversion (UTC, and on SQLite the text SQLAlchemy stores).
    to_sql = _finished_at_binder(dialect)
    conn.exec_driver_sql(
        _MARK_SENT_QMARK if dialect.paramstyle == "qmark" else _MARK_SENT,
        [(to_sql(now), message) for message, now in sent],
    )


@functools.lru_cache(maxsize=4)
def _finished_at_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    process = outbox.c.finished_at.type.bind_processor(dialect)
    return process if process is not None else (lambda value: value)


def mark_temporary(
    conn: Connection,
    message: int,
    *,
    owner: str,
    code: int | None,
    error: str,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> Status:
    """A 4xx or a connection failure: queue again after a backoff, or fail at the limit."""
    attempts = (
        conn.execute(select(outbox.c.attempts).where(outbox.c.id == message)).scalar_one() + 1
    )
    final = attempts >= policy.max_attempts
    status = Status.FAILED if final else Status.QUEUED
    conn.execute(
        update(outbox)
        .where(outbox.c.id == message, outbox.c.lease_owner == owner)
        .values(
            status=status.value,
            attempts=attempts,
            next_attempt_at=now + policy.delay(attempts, rng),
            lease_owner=None,
            lease_until=None,
            last_code=code,
            last_error=error if not final else f"gave up after {attempts} attempts: {error}",
            finished_at=now if final else None,
        )
    )
    return status


def mark_permanent(
    conn: Connection, message: int, *, owner: str, code: int | None, error: str, now: datetime
) -> None:
    """A 5xx: failed for good, and counted toward the recipient's suppression."""
    conn.execute(
        update(outbox)
        .where(outbox.c.id == message, outbox.c.lease_owner == owner)
        .values(
            status=Status.FAILED.value,
            attempts=outbox.c.attempts + 1,
            lease_owner=None,
            lease_until=None,
            last_code=code,
            last_error=error,
            finished_at=now,
        )
    )


def mark_skipped(conn: Connection, message: int, *, owner: str, reason: str, now: datetime) -> None:
    """Not sent, on purpose: the recipient is unsubscribed or suppressed."""
    conn.execute(
        update(outbox)
        .where(outbox.c.id == message, outbox.c.lease_owner == owner)
        .values(
            status=Status.SKIPPED.value,
            lease_owner=None,
            lease_until=None,
            last_error=reason,
            finished_at=now,
        )
    )


def permanent_failures(conn: Connection, recipient: str) -> int:
    """How many messages to this address ended in a 5xx."""
    query = select(func.count()).where(
        outbox.c.recipient_key == recipient.lower(),
        outbox.c.status == Status.FAILED.value,
        outbox.c.last_code >= 500,
    )
    return int(conn.execute(query).scalar_one())


def status_counts(conn: Connection) -> dict[Status, int]:
    """The outbox by status (every status present, zero when empty)."""
    counts = dict.fromkeys(Status, 0)
    for status, count in conn.execute(
        select(outbox.c.status, func.count()).group_by(outbox.c.status)
    ):
        counts[Status(status)] = int(count)
    return counts


# -- what administrators ask of the outbox (``publisher status``, ``retry``, ``explain``) --


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One row as an administrator sees it: who, which message, and how it went."""

    id: int
    recipient: str
    message_id: str
    dedupe_key: str
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


_ROW_COLUMNS = (
    outbox.c.id,
    outbox.c.recipient,
    outbox.c.message_id,
    outbox.c.dedupe_key,
    outbox.c.status,
    outbox.c.attempts,
    outbox.c.next_attempt_at,
    outbox.c.last_code,
    outbox.c.last_error,
    outbox.c.created_at,
    outbox.c.finished_at,
)


def _outbox_row(row: Row[*tuple[Any, ...]]) -> OutboxRow:
    return OutboxRow(
        id=row.id,
        recipient=row.recipient,
        message_id=row.message_id,
        dedupe_key=row.dedupe_key,
        status=Status(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_code=row.last_code,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


@dataclass(frozen=True, slots=True)
class QueueTimes:
    """Queued rows by when they go, and rows whose worker let its lease run out."""

    due: int  # queued and due at ``now``: the next send pass takes them
    waiting: int  # queued, waiting for their backoff
    next_attempt_at: datetime | None  # the earliest of the waiting ones
    expired_leases: int  # sending, but the lease has run out: another worker takes them


def queue_times(conn: Connection, *, now: datetime) -> QueueTimes:
    queued = outbox.c.status == Status.QUEUED.value
    due = int(
        conn.execute(
            select(func.count()).where(queued, outbox.c.next_attempt_at <= now)
        ).scalar_one()
    )
    waiting, earliest = conn.execute(
        select(func.count(), func.min(outbox.c.next_attempt_at)).where(
            queued, outbox.c.next_attempt_at > now
        )
    ).one()
    expired = conn.execute(
        select(func.count()).where(
            outbox.c.status == Status.SENDING.value, outbox.c.lease_until < now
        )
    ).scalar_one()
    # min() takes its argument's type: the result comes back as an aware UTC datetime.
    return QueueTimes(due, int(waiting), earliest, int(expired))


def latest_failures(conn: Connection, *, limit: int) -> list[OutboxRow]:
    """Failed rows, the most recent failure first."""
    query = (
        select(*_ROW_COLUMNS)
        .where(outbox.c.status == Status.FAILED.value)
        .order_by(outbox.c.finished_at.desc(), outbox.c.id.desc())
        .limit(limit)
    )
    return [_outbox_row(row) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class WaitingGroup:
    """Queued rows that failed before with the same answer: usually one cause."""

    code: int | None
    error: str
    messages: int
    next_attempt_at: datetime  # the earliest of them
    recipient: str  # one of them (the first in alphabetical order)


def waiting_retries(conn: Connection, *, limit: int) -> list[WaitingGroup]:
    """Queued rows that failed at least once (a 4xx, a lost connection), grouped by their
    last answer, the most numerous first."""
    count = func.count().label("messages")
    query = (
        select(
            outbox.c.last_code,
            outbox.c.last_error,
            count,
            func.min(outbox.c.next_attempt_at).label("next_attempt_at"),
            func.min(outbox.c.recipient).label("recipient"),
        )
        .where(outbox.c.status == Status.QUEUED.value, outbox.c.last_error.is_not(None))
        .group_by(outbox.c.last_code, outbox.c.last_error)
        .order_by(count.desc(), outbox.c.last_error)
        .limit(limit)
    )
    return [
        WaitingGroup(
            row.last_code, row.last_error, int(row.messages), row.next_attempt_at, row.recipient
        )
        for row in conn.execute(query)
    ]


def failed_since(conn: Connection, since: datetime) -> int:
    """How many messages failed for good at or after ``since``."""
    query = select(func.count()).where(
        outbox.c.status == Status.FAILED.value, outbox.c.finished_at >= since
    )
    return int(conn.execute(query).scalar_one())


def make_due(conn: Connection, *, now: datetime) -> int:
    """Queued rows waiting for their backoff become due at ``now``; returns how many."""
    result = conn.execute(
        update(outbox)
        .where(outbox.c.status == Status.QUEUED.value, outbox.c.next_attempt_at > now)
        .values(next_attempt_at=now)
    )
    return int(result.rowcount)


def failed_recipients(conn: Connection) -> dict[str, int]:
    """The (lower-cased) addresses of failed rows, with how many rows each."""
    query = (
        select(outbox.c.recipient_key, func.count())
        .where(outbox.c.status == Status.FAILED.value)
        .group_by(outbox.c.recipient_key)
    )
    return {key: int(count) for key, count in conn.execute(query)}


def requeue_failed(conn: Connection, recipient_keys: Iterable[str], *, now: datetime) -> int:
    """Failed rows to these addresses are queued again, due at ``now``, attempts reset.

    The last code and error stay until the next attempt replaces them; the items stay
    in ``sent_items``, so nothing else is queued for them twice.
    """
    keys = list(recipient_keys)
    requeued = 0
    for start in range(0, len(keys), 500):
        result = conn.execute(
            update(outbox)
            .where(
                outbox.c.status == Status.FAILED.value,
                outbox.c.recipient_key.in_(keys[start : start + 500]),
            )
            .values(
                status=Status.QUEUED.value,
                attempts=0,
                next_attempt_at=now,
                finished_at=None,
                lease_owner=None,
                lease_until=None,
            )
        )
        requeued += int(result.rowcount)
    return requeued


def rows_for_item(
    conn: Connection, item_id: str, recipient_keys: Iterable[str]
) -> dict[str, OutboxRow]:
    """The row that carries ``item_id`` to each of these (lower-cased) addresses it was
    queued for; looked up by ``sent_items``' primary key."""
    keys = sorted(set(recipient_keys))
    found: dict[str, OutboxRow] = {}
    for start in range(0, len(keys), 500):
        query = (
            select(sent_items.c.recipient_key, *_ROW_COLUMNS)
            .join(outbox, outbox.c.id == sent_items.c.outbox_id)
            .where(
                sent_items.c.recipient_key.in_(keys[start : start + 500]),
                sent_items.c.item_id == item_id,
            )
        )
        found.update((row.recipient_key, _outbox_row(row)) for row in conn.execute(query))
    return found


def queued_keys(conn: Connection, wanted: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (recipient key, dedupe key) pairs have a row, whatever its status."""
    pairs = list(set(wanted))
    found: set[tuple[str, str]] = set()
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        query = select(outbox.c.recipient_key, outbox.c.dedupe_key).where(
            tuple_(outbox.c.recipient_key, outbox.c.dedupe_key).in_(chunk)
        )
        found.update((row.recipient_key, row.dedupe_key) for row in conn.execute(query))
    return found


@dataclass(frozen=True, slots=True)
class Pruned:
    """What :func:`prune` deleted."""

    messages: int = 0  # finished outbox rows
    items: int = 0  # their sent_items rows
    bodies: int = 0
    segments: int = 0


_FINISHED = (Status.SENT.value, Status.FAILED.value, Status.SKIPPED.value)
_DELETE_SENT_ITEMS_QMARK = (
    "DELETE FROM sent_items WHERE recipient_key = ? AND item_id = ? AND outbox_id = ?"
)
_DELETE_SENT_ITEMS = _DELETE_SENT_ITEMS_QMARK.replace("?", "%s")


def prune(engine: Engine, *, before: datetime, batch: int = 500) -> Pruned:
    """Forget the messages that finished before ``before``: their rows, the record of
    their items, and the bodies and segments that no row left needs.

    Safe beside planning passes and workers, committing every ``batch`` rows (a digest
    of 200 items has 200 records to delete: small batches keep SQLite's write lock short). Only
    finished rows go, never one waiting to be sent. Their items were collected before
    ``before``, so no pass with ``before`` in its look-back (``OutboxSettings.keep``)
    mails them again, and ``sent_items`` need not remember them. A body goes when it is
    older than ``before`` and no row names it; a segment when no body as recent as its
    last use is left.
    """
    messages = items = 0
    with engine.connect() as conn:
        qmark = conn.dialect.paramstyle == "qmark"
        forget = _DELETE_SENT_ITEMS_QMARK if qmark else _DELETE_SENT_ITEMS
        while True:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.recipient_key, outbox.c.item_ids)
                .where(outbox.c.finished_at < before, outbox.c.status.in_(_FINISHED))
                .limit(batch)
            ).all()
            if not rows:
                break
            sent = [(row.recipient_key, item, row.id) for row in rows for item in row.item_ids]
            if sent:
                # By sent_items' primary key, the items each row carried.
                conn.exec_driver_sql(forget, sent)
            conn.execute(delete(outbox).where(outbox.c.id.in_([row.id for row in rows])))
            conn.commit()
            messages += len(rows)
            items += len(sent)
        unused = (
            select(bodies.c.id)
            .where(
                bodies.c.created_at < before,
                ~select(outbox.c.id).where(outbox.c.body_id == bodies.c.id).exists(),
            )
            .limit(batch)
            .scalar_subquery()
        )
        dropped_bodies = _delete_in_batches(conn, delete(bodies).where(bodies.c.id.in_(unused)))
        # A body shows only segments used when it was written, or later.
        oldest = conn.execute(select(func.min(bodies.c.created_at))).scalar()
        limit = before if oldest is None else min(before, oldest)
        stale = select(segments.c.digest).where(segments.c.used_at < limit).limit(batch)
        dropped_segments = _delete_in_batches(
            conn, delete(segments).where(segments.c.digest.in_(stale.scalar_subquery()))
        )
    return Pruned(messages, items, dropped_bodies, dropped_segments)


def _delete_in_batches(conn: Connection, statement: Delete) -> int:
    """Run ``statement``, which deletes a batch at a time, until it deletes nothing."""
    total = 0
    while True:
        deleted = int(conn.execute(statement).rowcount)
        conn.commit()
        if not deleted:
            return total
        total += deleted
