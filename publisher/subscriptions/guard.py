"""Holding back an edit of ``subscriptions.yaml`` that would mail far more people.

A slip of the hand (a deleted ``fields_of_work`` line, ``countries: []`` in
``defaults``) can turn a rule that reaches ten people into one that reaches everyone.
While ``publisher run`` runs, an edit whose next send would reach more than
``recipients_growth_limit`` times as many addresses as the rules in force (and at least
``GROWTH_FLOOR`` more) waits until an administrator confirms that exact file with
``publisher check --confirm``. The next send is measured on the items of the last week
(the horizon of a weekly digest) against both sets of rules.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from publisher.matching import match
from publisher.store.items import load_items
from publisher.store.schema import confirmations, items
from publisher.subscriptions.model import Subscriptions

HORIZON = timedelta(days=7)
GROWTH_FLOOR = 10  # growing from 2 to 7 recipients is never held back


@dataclass(frozen=True, slots=True)
class Growth:
    before: int  # addresses the rules in force would mail
    after: int  # addresses the edited rules would mail

    def exceeds(self, limit: float) -> bool:
        if limit <= 0:
            return False
        return self.after - self.before >= GROWTH_FLOOR and self.after > self.before * limit


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recipients_of_next_send(
    conn: Connection, subscriptions: Subscriptions, *, default_locale: str, now: datetime
) -> set[str]:
    """The addresses the recent items would reach under ``subscriptions``."""
    recent = conn.execute(select(items.c.id).where(items.c.first_seen >= now - HORIZON))
    ids = list(recent.scalars())
    if not ids:
        return set()
    found = load_items(conn, ids)
    return {
        s.email.lower()
        for group in match(subscriptions, found, default_locale=default_locale)
        for s in group.subscribers
    }


def growth(
    conn: Connection,
    before: Subscriptions,
    after: Subscriptions,
    *,
    default_locale: str,
    now: datetime,
) -> Growth:
    return Growth(
        len(recipients_of_next_send(conn, before, default_locale=default_locale, now=now)),
        len(recipients_of_next_send(conn, after, default_locale=default_locale, now=now)),
    )


def confirm(conn: Connection, digest: str, *, now: datetime) -> None:
    """Record that the file with this digest may take effect, however many it mails."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(confirmations).values(digest=digest, confirmed_at=now)
    conn.execute(statement.on_conflict_do_nothing(index_elements=["digest"]))


def is_confirmed(conn: Connection, digest: str) -> bool:
    query = select(confirmations.c.digest).where(confirmations.c.digest == digest)
    return conn.execute(query).first() is not None
