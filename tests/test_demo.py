from __future__ import annotations

import email
import email.policy
import mailbox
import re
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

from publisher.cli import cli
from publisher.demo import run_demo
from publisher.resources import sample
from publisher.store import open_store
from publisher.store.suppressions import is_suppressed
from publisher.subscriptions import load_subscriptions
from publisher.taxonomy import load_taxonomy
from publisher.web.app import create_app


def test_the_demo_mails_every_sample_subscriber_well_formed_localized_messages(
    tmp_path: Path,
) -> None:
    """Every sample subscriber gets mail over SMTP with one-click headers, in their language."""
    result = run_demo(tmp_path)
    assert result.delivered.failed == result.delivered.retried == 0
    subscribers = load_subscriptions(
        sample("subscriptions.yaml"), taxonomy=load_taxonomy(), locales=result.settings.locales
    ).subscribers
    received = {r.recipient for r in result.received}
    assert received == {s.email for s in subscribers}
    assert result.delivered.sent == len(result.received)

    box = mailbox.Maildir(result.maildir, create=False)
    messages = [
        email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        for key in box.iterkeys()
    ]
    for message in messages:
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"] and message["Message-ID"] and message["Date"]
        assert message.get_content_type() == "multipart/alternative"
    russian = [m for m in messages if m["To"] == "analyst@example.org"]
    assert russian and all(m["Content-Language"] == "ru" for m in russian)
    assert len({m["Message-ID"] for m in messages}) == len(messages)

    # The one-click link of a captured message unsubscribes through the web app.
    url = re.search(r"<(http://[^>]+/u/[^>]+)>", str(russian[0]["List-Unsubscribe"]))
    assert url is not None
    engine = open_store(result.database_url)
    with TestClient(create_app(result.settings, engine)) as client:
        answer = client.post(url[1], data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    with engine.connect() as conn:
        assert is_suppressed(conn, "analyst@example.org")
    engine.dispose()


def test_publisher_demo_prints_who_received_what(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`publisher demo` runs in the current directory and names each subscriber."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "analyst@example.org" in result.output
    assert (tmp_path / "var" / "demo" / "Maildir").is_dir()
