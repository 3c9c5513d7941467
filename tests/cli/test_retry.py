"""``publisher retry [--failed]``: messages back in line, delivered by the next send."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from publisher.store.schema import outbox
from publisher.store.suppressions import suppress
from tests.cli import test_status as base
from tests.delivery.conftest import MailServer

certificates, start_server, server = base.certificates, base.start_server, base.server
clean_environment, deployment = base.clean_environment, base.deployment
Deployment, send_with_refusals = base.Deployment, base.send_with_refusals
OK, REFUSED, LATER = base.OK, base.REFUSED, base.LATER


def _rows(engine: Engine) -> dict[str, tuple[str, int]]:
    with engine.connect() as conn:
        query = select(outbox.c.recipient, outbox.c.status, outbox.c.attempts)
        return {row.recipient: (row.status, row.attempts) for row in conn.execute(query)}


def _delivered_to(server: MailServer) -> list[str]:
    return [recipient for m in server.handler.messages for recipient in m.recipients]


def test_retry_makes_the_451_due_and_retry_failed_brings_back_the_550(
    deployment: Deployment, server: MailServer, engine: Engine
) -> None:
    """retry sends the deferred message with the next send; --failed the refused one; once each."""
    send_with_refusals(deployment, server)
    server.handler.refuse.clear()  # the server accepts everyone from now on
    assert deployment.invoke("send").exit_code == 0
    assert _delivered_to(server) == [OK], "the 451 waits for its backoff"

    result = deployment.invoke("retry")
    assert result.exit_code == 0, result.output
    assert "1 queued message(s) waiting for their backoff: now due." in result.stdout
    assert "run `publisher send` (or let `publisher run`) deliver them" in result.stdout
    assert _delivered_to(server) == [OK], "retry only queues"
    assert deployment.invoke("send").exit_code == 0
    assert _delivered_to(server) == [OK, LATER], "the failed one is not retried without --failed"
    assert _rows(engine)[REFUSED] == ("failed", 1)

    code, report = deployment.json("retry", "--failed")
    assert code == 0
    assert report["made_due"] == 0 and report["requeued"] == 1
    assert report["left"]["not_subscribed"] == 0 and not any(report["left"]["suppressed"].values())
    assert _rows(engine)[REFUSED] == ("queued", 0)
    assert deployment.invoke("send").exit_code == 0
    assert _delivered_to(server) == [OK, LATER, REFUSED]
    assert _rows(engine) == {OK: ("sent", 1), LATER: ("sent", 2), REFUSED: ("sent", 1)}

    assert deployment.json("retry", "--failed")[1]["requeued"] == 0
    assert deployment.invoke("send").exit_code == 0
    assert len(server.handler.messages) == 3, "nobody gets the item twice"


def test_retry_failed_leaves_suppressed_and_removed_addresses_and_says_why(
    deployment: Deployment, server: MailServer, engine: Engine
) -> None:
    """Failed messages to a suppressed address, or one gone from the file, stay failed."""
    server.handler.refuse.update({REFUSED: base.REFUSE_550, LATER: base.REFUSE_550})
    assert deployment.invoke("send").exit_code == 0
    assert deployment.invoke("collect").exit_code == 0
    assert deployment.invoke("send").exit_code == 1
    with engine.begin() as conn:
        suppress(conn, REFUSED, reason="complained", now=datetime.now(UTC), source="admin")
    deployment.subscribe(OK, REFUSED)  # LATER is taken out of subscriptions.yaml

    result = deployment.invoke("retry", "--failed")
    assert result.exit_code == 0, result.output
    assert "0 failed message(s) queued again" in result.stdout
    assert "1 failed message(s) left: their address is suppressed (complained 1)" in result.stdout
    assert "1 failed message(s) left: their address is no longer in subscriptions.yaml" in (
        result.stdout
    )
    code, report = deployment.json("retry", "--failed")
    assert code == 0
    assert report["requeued"] == 0
    assert report["left"] == {
        "suppressed": {"unsubscribed": 0, "bounced": 0, "complained": 1, "manual": 0},
        "not_subscribed": 1,
    }
    rows = _rows(engine)
    assert rows[REFUSED][0] == rows[LATER][0] == "failed"
