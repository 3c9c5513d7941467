"""SIGKILL the sending process at random points of a 5,000-message send, restart it, and
repeat: at the end every message has arrived; the duplicates are counted and bounded.

The worker records each answer as soon as it comes, so a kill can only duplicate the
messages whose 250 arrived but whose record had not committed: at most one per SMTP
connection per kill. The seed is printed, so a failing run can be replayed.
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from publisher.delivery.message import make_message_id
from publisher.rendering.emails import UNSUBSCRIBE_URL_MARK, RenderedEmail
from publisher.store.outbox import NewMessage, Status, enqueue, status_counts
from tests.delivery.conftest import MailServer, command_environment, deployment_config
from tests.delivery.test_worker import build_template

MESSAGES = 5_000
KILLS = 4
CONNECTIONS = 4
LEASE_SECONDS = 2
NOW = datetime(2024, 12, 6, 8, 0, tzinfo=UTC)


def _body() -> bytes:
    rendered = RenderedEmail(
        subject="3 new items: Policing",
        html=f"<p>{'News. ' * 200}</p><a href='{UNSUBSCRIBE_URL_MARK}'>Unsubscribe</a>",
        text=f"{'News. ' * 200}\nUnsubscribe: {UNSUBSCRIBE_URL_MARK}\n",
        locale="en",
    )
    return build_template(rendered).to_bytes()


def _deployment(tmp_path: Path, engine: Engine, server: MailServer) -> Path:
    return deployment_config(
        tmp_path,
        engine.url.render_as_string(hide_password=False),
        server,
        extra=f'connections = {CONNECTIONS}\n[outbox]\nlease = "{LEASE_SECONDS}s"\nbatch = 100\n',
    )


def _send(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = command_environment()
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "publisher", "--config", str(config), "send"],
            cwd=config.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )


def test_sigkill_during_a_send_loses_no_message(
    tmp_path: Path, engine: Engine, server: MailServer
) -> None:
    """Four kills at random moments, four restarts: all 5,000 arrive; duplicates are at
    most one per connection per kill."""
    if engine.dialect.name == "sqlite" and os.environ.get("PUBLISHER_TEST_DATABASE_URL"):
        pytest.skip("a long test: it runs once, on PostgreSQL, where PostgreSQL is available")
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    expected = {
        make_message_id(key=f"crash/{n}", domain="example.org"): f"reader{n}@example.net"
        for n in range(MESSAGES)
    }
    with engine.begin() as conn:
        enqueue(
            conn,
            _body(),
            [
                NewMessage(address, "daily:2024-12-06", (f"item-{n % 7}",), message_id)
                for n, (message_id, address) in enumerate(expected.items())
            ],
            now=NOW,
        )
    config = _deployment(tmp_path, engine, server)
    log = tmp_path / "send.log"

    kills = 0
    for _ in range(KILLS):
        process = _send(config, log)
        before = len(server.handler.messages)
        # Kill while messages are flowing, at a random point of the send.
        deadline = time.monotonic() + 60
        target = before + rng.randrange(50, MESSAGES // (KILLS + 1))
        while len(server.handler.messages) < target and process.poll() is None:
            assert time.monotonic() < deadline, "the send made no progress"
            time.sleep(0.005)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        time.sleep(LEASE_SECONDS + 0.5)  # the dead sender's rows are free again
    final = _send(config, log)
    final.wait(timeout=300)
    assert final.returncode == 0, log.read_text(encoding="utf-8", errors="replace")

    arrived = Counter(
        email.message_from_bytes(m.content, policy=email.policy.default)["Message-ID"]
        for m in server.handler.messages
    )
    duplicates = sum(count - 1 for count in arrived.values())
    print(f"{MESSAGES} messages, {kills} kills: lost 0, duplicates {duplicates}")
    assert set(arrived) == set(expected), f"lost: {len(set(expected) - set(arrived))}"
    assert kills >= 1
    assert duplicates <= kills * CONNECTIONS, f"seed {seed}: {duplicates} duplicates"
    with engine.connect() as conn:
        counts = status_counts(conn)
    assert counts[Status.SENT] == MESSAGES
    assert sum(counts.values()) == MESSAGES
