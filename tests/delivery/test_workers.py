"""Three `publisher worker` processes on one PostgreSQL outbox: every message sent once."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine

from publisher.delivery.message import make_message_id
from publisher.store.outbox import NewMessage, Status, enqueue, status_counts
from tests.delivery.conftest import MailServer, command_environment, deployment_config
from tests.delivery.test_crash_safety import NOW, _body

MESSAGES = 1_500
WORKERS = 3


def test_three_workers_share_the_outbox_without_sending_twice(
    tmp_path: Path, engine: Engine, server: MailServer
) -> None:
    """Rows are claimed with FOR UPDATE SKIP LOCKED: each message goes out exactly once,
    and every worker gets a share of the work."""
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers share one outbox on PostgreSQL")
    # 10 ms a message on each connection: the work lasts seconds, longer than the time
    # one worker may take to start after another, so that each gets a share.
    server.handler.data_delay = 0.01
    ids = [make_message_id(key=f"workers/{n}", domain="example.org") for n in range(MESSAGES)]
    with engine.begin() as conn:
        enqueue(
            conn,
            _body(),
            [
                NewMessage(f"reader{n}@example.net", "daily:2024-12-06", ("item",), message_id)
                for n, message_id in enumerate(ids)
            ],
            now=NOW,
        )
    config = deployment_config(
        tmp_path,
        engine.url.render_as_string(hide_password=False),
        server,
        extra="connections = 2\n[outbox]\nbatch = 25\n",
    )
    env = command_environment()
    command = [sys.executable, "-m", "publisher", "--config", str(config), "worker", "--once"]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(WORKERS)
    ]
    try:
        outputs = [process.communicate(timeout=300)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
    assert [process.returncode for process in processes] == [0] * WORKERS, outputs

    arrived = Counter(
        email.message_from_bytes(m.content, policy=email.policy.default)["Message-ID"]
        for m in server.handler.messages
    )
    assert set(arrived) == set(ids)
    assert max(arrived.values()) == 1, "a message was sent twice"
    shares = [int(output.split("sent ")[1].split(",")[0]) for output in outputs]
    assert sum(shares) == MESSAGES
    assert all(share > 0 for share in shares), shares
    with engine.connect() as conn:
        assert status_counts(conn)[Status.SENT] == MESSAGES
