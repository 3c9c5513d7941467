from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import httpx
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
from tests.processes import free_port


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

    # The feeds are built too, one set per language.
    feeds = result.settings.feeds.out_dir
    for locale in result.settings.locales:
        parsed = feedparser.parse((feeds / locale / "all.atom").read_bytes())
        assert not parsed.bozo and parsed.entries, locale

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


def test_demo_serve_keeps_the_web_app_up_for_the_captured_unsubscribe_links(
    tmp_path: Path,
) -> None:
    """`demo --serve`: a captured message's link opens the confirmation page and its POST
    unsubscribes; SIGINT stops the server cleanly."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    command = [sys.executable, "-m", "publisher", "demo", "--serve", "--port", str(port)]
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, process.stdout and process.stdout.read()
                assert time.monotonic() < deadline, "demo --serve did not start serving"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            box = mailbox.Maildir(tmp_path / "var" / "demo" / "Maildir", create=False)
            message = email.message_from_bytes(
                box.get_bytes(next(box.iterkeys())), policy=email.policy.default
            )
            link = re.search(r"<(http://[^>]+/u/[^>]+)>", str(message["List-Unsubscribe"]))
            assert link is not None and link[1].startswith(f"http://127.0.0.1:{port}/u/")
            page = httpx.get(link[1], timeout=5)
            done = httpx.post(link[1], data={"List-Unsubscribe": "One-Click"}, timeout=5)
            process.send_signal(signal.SIGINT)
            status = process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
        output = process.stdout.read().decode() if process.stdout else ""
    assert page.status_code == 200 and "<form" in page.text
    assert done.status_code == 200
    assert status == 0, output
    assert "Traceback" not in output
