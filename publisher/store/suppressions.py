"""The suppression list: addresses that are never mailed again.

An address enters it when its owner unsubscribes (one-click, the web page or the mailto
address), when the mail server bounces or the recipient complains, or by an
administrator's hand; ``publisher resubscribe`` takes it out. Addresses are kept
lower-cased. Suppressing an address twice is harmless: the first entry, with its reason
and time, stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Insert, Row, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from publisher.store.schema import suppressions
from publisher.unsubscribe import normalize_address


class Reason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    MANUAL = "manual"


class Source(StrEnum):
    """Where a suppression came from; other values are allowed (up to 32 characters)."""

    ONE_CLICK = "one-click"  # RFC 8058 POST from the mail client
    WEB = "web"  # the button of the confirmation page
    MAILTO = "mailto"  # a message to the List-Unsubscribe mailto address
    ADMIN = "admin"  # an administrator
    SMTP = "smtp"  # the mail server's permanent failure


@dataclass(frozen=True, slots=True)
class Suppression:
    email: str
    reason: Reason
    source: str
    created_at: datetime
    detail: str | None


def _insert_if_absent(conn: Connection) -> Insert:
    # INSERT … ON CONFLICT DO NOTHING: concurrent unsubscribes of one address (a mail
    # client and a person clicking) neither fail nor abort the transaction.
    if conn.dialect.name == "postgresql":
        return postgresql.insert(suppressions).on_conflict_do_nothing(index_elements=["email"])
    if conn.dialect.name == "sqlite":
        return sqlite.insert(suppressions).on_conflict_do_nothing(index_elements=["email"])
    raise NotImplementedError(f"suppressions are not supported on {conn.dialect.name}")


def suppress(
    conn: Connection,
    email: str,
    *,
    reason: Reason | str,
    now: datetime,
    source: str,
    detail: str | None = None,
) -> bool:
    """Suppress ``email``; True when it was not suppressed before."""
    reason = Reason(reason)
    if not source or len(source) > 32:
        raise ValueError(f"suppression source {source!r}: expected 1 to 32 characters")
    result = conn.execute(
        _insert_if_absent(conn)
        .values(
            email=normalize_address(email),
            reason=reason.value,
            source=source,
            created_at=now,
            detail=detail,
        )
        # RETURNING tells a new row from a skipped one on both databases (rowcount does
        # not, with every driver).
        .returning(suppressions.c.email)
    )
    return result.first() is not None


def is_suppressed(conn: Connection, email: str) -> bool:
    query = select(suppressions.c.email).where(suppressions.c.email == normalize_address(email))
    return conn.execute(query).first() is not None


def suppressed_among(conn: Connection, emails: Iterable[str]) -> set[str]:
    """Which of these addresses are suppressed, in their normalized form: one query
    per 500 addresses, for a worker's whole batch instead of one per message."""
    wanted = sorted({normalize_address(email) for email in emails})
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        query = select(suppressions.c.email).where(
            suppressions.c.email.in_(wanted[start : start + 500])
        )
        found.update(conn.execute(query).scalars())
    return found


def list_suppressions(conn: Connection) -> list[Suppression]:
    """Every suppression, oldest first."""
    query = select(suppressions).order_by(suppressions.c.created_at, suppressions.c.email)
    return [
        Suppression(
            email=row.email,
            reason=Reason(row.reason),
            source=row.source,
            created_at=row.created_at,
            detail=row.detail,
        )
        for row in conn.execute(query)
    ]


def _suppression(row: Row[*tuple[Any, ...]]) -> Suppression:
    return Suppression(
        email=row.email,
        reason=Reason(row.reason),
        source=row.source,
        created_at=row.created_at,
        detail=row.detail,
    )


def suppression_counts(conn: Connection) -> dict[Reason, int]:
    """Suppressed addresses by reason (every reason present, zero when none)."""
    counts = dict.fromkeys(Reason, 0)
    query = select(suppressions.c.reason, func.count()).group_by(suppressions.c.reason)
    for reason, count in conn.execute(query):
        counts[Reason(reason)] = int(count)
    return counts


def latest_suppressions(conn: Connection, *, limit: int) -> list[Suppression]:
    """The most recent suppressions, newest first."""
    query = (
        select(suppressions)
        .order_by(suppressions.c.created_at.desc(), suppressions.c.email)
        .limit(limit)
    )
    return [_suppression(row) for row in conn.execute(query)]


def suppressions_of(conn: Connection, emails: Iterable[str]) -> dict[str, Suppression]:
    """The suppressions of these addresses, keyed by their normalized form."""
    wanted = sorted({normalize_address(email) for email in emails})
    found: dict[str, Suppression] = {}
    for start in range(0, len(wanted), 500):
        query = select(suppressions).where(suppressions.c.email.in_(wanted[start : start + 500]))
        found.update((row.email, _suppression(row)) for row in conn.execute(query))
    return found


def lift(conn: Connection, email: str) -> Suppression | None:
    """Take ``email`` off the list; the entry it had, or ``None`` when it was not on it."""
    query = (
        delete(suppressions)
        .where(suppressions.c.email == normalize_address(email))
        .returning(*suppressions.c)
    )
    row = conn.execute(query).first()
    return None if row is None else _suppression(row)
