"""``publisher resubscribe EMAIL``: an address off the suppression list, mailed again."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from publisher.store.suppressions import is_suppressed, suppress
from tests.cli import test_status as base
from tests.delivery.conftest import MailServer

certificates, start_server, server = base.certificates, base.start_server, base.server
clean_environment, deployment, offline = base.clean_environment, base.deployment, base.offline
Deployment = base.Deployment
OK, REFUSED, LATER = base.OK, base.REFUSED, base.LATER


def _suppress(engine: Engine, email: str, reason: str, source: str) -> None:
    with engine.begin() as conn:
        suppress(conn, email, reason=reason, now=datetime(2025, 3, 3, 9, tzinfo=UTC), source=source)


def test_resubscribed_address_is_reached_by_the_next_send(
    deployment: Deployment, server: MailServer, engine: Engine
) -> None:
    """After unsubscribing, resubscribe lets the next send reach the address; others stay out."""
    assert deployment.invoke("send").exit_code == 0  # registers the subscribers
    _suppress(engine, OK, "unsubscribed", "one-click")
    _suppress(engine, LATER, "unsubscribed", "web")

    result = deployment.invoke("resubscribe", OK.upper())
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"{OK} is no longer suppressed; it was unsubscribed (by one-click, 2025-03-03 09:00 UTC)"
    )
    assert result.stderr == ""
    assert deployment.invoke("collect").exit_code == 0
    assert deployment.invoke("send").exit_code == 0
    assert sorted(r for m in server.handler.messages for r in m.recipients) == [OK, REFUSED]
    with engine.connect() as conn:
        assert is_suppressed(conn, LATER) and not is_suppressed(conn, OK)


def test_resubscribing_an_address_not_suppressed_exits_1(offline: Deployment) -> None:
    """An address that is not on the suppression list is an error: exit 1, nothing changed."""
    result = offline.invoke("resubscribe", OK)
    assert result.exit_code == 1
    assert f"{OK} is not on the suppression list" in result.output


def test_resubscribing_an_address_not_subscribed_warns(offline: Deployment, engine: Engine) -> None:
    """An address missing from subscriptions.yaml is taken off with a warning; exit 0."""
    _suppress(engine, "former@example.org", "bounced", "smtp")
    result = offline.invoke("resubscribe", "former@example.org")
    assert result.exit_code == 0, result.output
    assert "it was bounced (by smtp" in result.stdout
    assert "former@example.org is not in" in result.stderr
    assert "it gets nothing until it is added there" in result.stderr
    with engine.connect() as conn:
        assert not is_suppressed(conn, "former@example.org")
