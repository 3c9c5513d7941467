"""The suppression list, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from publisher.store.schema import suppressions
from publisher.store.suppressions import (
    Reason,
    Source,
    is_suppressed,
    lift,
    list_suppressions,
    suppress,
)

T0 = datetime(2024, 12, 6, 9, 0, tzinfo=UTC)


def test_suppressing_records_the_address_lower_cased(engine: Engine) -> None:
    """A suppressed address is found whatever its case, with its reason, source and time."""
    with engine.begin() as conn:
        assert suppress(
            conn, "Analyst@Example.ORG", reason="unsubscribed", now=T0, source=Source.ONE_CLICK
        )
    with engine.connect() as conn:
        assert is_suppressed(conn, "analyst@example.org")
        assert is_suppressed(conn, " ANALYST@example.org ")
        assert not is_suppressed(conn, "other@example.org")
        [entry] = list_suppressions(conn)
    assert entry.email == "analyst@example.org"
    assert entry.reason is Reason.UNSUBSCRIBED
    assert entry.source == "one-click"
    assert entry.created_at == T0
    assert entry.detail is None


def test_suppressing_twice_is_harmless_and_keeps_the_first_entry(engine: Engine) -> None:
    """A second unsubscribe returns False, raises nothing and adds no row."""
    with engine.begin() as conn:
        first = suppress(conn, "a@example.org", reason="unsubscribed", now=T0, source="web")
    with engine.begin() as conn:
        second = suppress(
            conn, "A@example.org", reason="bounced", now=T0 + timedelta(1), source="smtp"
        )
        entries = list_suppressions(conn)
    assert (first, second) == (True, False)
    assert [(e.email, e.reason, e.created_at) for e in entries] == [
        ("a@example.org", Reason.UNSUBSCRIBED, T0)
    ]


def test_suppressed_addresses_and_listing_order(engine: Engine) -> None:
    """All addresses come back as a set; the listing is oldest first, details kept."""
    with engine.begin() as conn:
        suppress(
            conn,
            "b@example.org",
            reason="bounced",
            now=T0 + timedelta(1),
            source="smtp",
            detail="550 5.1.1 no such user",
        )
        suppress(conn, "a@example.org", reason=Reason.MANUAL, now=T0, source="admin")
        entries = list_suppressions(conn)
    assert [e.email for e in entries] == ["a@example.org", "b@example.org"]
    assert entries[1].detail == "550 5.1.1 no such user"


def test_lifting_takes_an_address_off_the_list(engine: Engine) -> None:
    """Resubscribing removes the entry once, and says what it was; lifting an absent
    address says so."""
    with engine.begin() as conn:
        suppress(conn, "a@example.org", reason="complained", now=T0, source="admin")
        lifted = lift(conn, "A@EXAMPLE.org")
        assert lifted is not None
        assert (lifted.email, lifted.reason, lifted.source) == (
            "a@example.org",
            Reason.COMPLAINED,
            "admin",
        )
        assert lift(conn, "a@example.org") is None
        assert not is_suppressed(conn, "a@example.org")
        assert suppress(conn, "a@example.org", reason="unsubscribed", now=T0, source="web")


def test_an_unknown_reason_is_refused(engine: Engine) -> None:
    """Only the four reasons are accepted, by the code and by the database."""
    with engine.begin() as conn, pytest.raises(ValueError, match="spam"):
        suppress(conn, "a@example.org", reason="spam", now=T0, source="web")
    with engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(
            suppressions.insert().values(
                email="a@example.org", reason="spam", source="web", created_at=T0
            )
        )
