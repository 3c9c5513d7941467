"""``publisher suppress EMAIL``: an administrator stops mail to an address."""

from __future__ import annotations

from sqlalchemy import Engine

from publisher.store.suppressions import suppressions_of
from tests.cli import test_status as base
from tests.delivery.conftest import MailServer

certificates, start_server, server = base.certificates, base.start_server, base.server
clean_environment, deployment, offline = base.clean_environment, base.deployment, base.offline
Deployment = base.Deployment
OK, REFUSED = base.OK, base.REFUSED


def test_a_suppressed_address_gets_nothing_more_until_resubscribed(
    deployment: Deployment, server: MailServer, engine: Engine
) -> None:
    """Its queued messages are skipped; the entry says who and why; resubscribe undoes it."""
    assert deployment.invoke("send").exit_code == 0  # registers the subscribers
    assert deployment.invoke("collect").exit_code == 0
    result = deployment.invoke("suppress", OK.upper(), "--reason", "complained", "--detail", "T-17")
    assert result.exit_code == 0, result.output
    assert "is suppressed (complained)" in result.stdout
    with engine.connect() as conn:
        [entry] = suppressions_of(conn, [OK]).values()
    assert (entry.reason.value, entry.source, entry.detail) == ("complained", "admin", "T-17")

    assert deployment.invoke("send").exit_code == 0
    reached = {r for m in server.handler.messages for r in m.recipients}
    assert REFUSED in reached and OK not in reached

    again = deployment.invoke("suppress", OK)
    assert again.exit_code == 1
    assert "already suppressed (complained, by admin" in again.output
    assert deployment.invoke("resubscribe", OK).exit_code == 0


def test_only_the_reasons_an_administrator_records_are_offered(offline: Deployment) -> None:
    """Bounces are recorded by the mail server's answers, not by hand."""
    result = offline.invoke("suppress", OK, "--reason", "bounced")
    assert result.exit_code == 2
    assert "'bounced' is not one of" in result.output
