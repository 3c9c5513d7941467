"""`publisher worker --metrics HOST:PORT`: a separate sending process can be scraped."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import Engine

from publisher.store.outbox import NewMessage, enqueue
from tests.delivery.conftest import MailServer, command_environment, deployment_config
from tests.delivery.test_crash_safety import NOW, _body
from tests.processes import free_port


def _scrape(url: str, *, wanted: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                text = answer.read().decode("utf-8")
        except OSError:
            text = ""
        if wanted in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{url} never showed {wanted!r}; last answer:\n{text}")


def test_a_worker_serves_its_own_metrics(
    tmp_path: Path, engine: Engine, server: MailServer
) -> None:
    """The worker's counters are at /metrics while it runs; SIGTERM stops it cleanly."""
    with engine.begin() as conn:
        enqueue(
            conn,
            _body(),
            [
                NewMessage(f"r{n}@example.net", "daily:2024-12-06", ("i",), f"<m{n}@x.org>")
                for n in range(3)
            ],
            now=NOW,
        )
    config = deployment_config(tmp_path, engine.url.render_as_string(hide_password=False), server)
    port = free_port()
    env = command_environment()
    command = [sys.executable, "-m", "publisher", "--config", str(config), "worker"]
    process = subprocess.Popen(
        [*command, "--poll", "0.1", "--metrics", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        text = _scrape(
            f"http://127.0.0.1:{port}/metrics", wanted="publisher_messages_sent_total 3.0"
        )
        assert "process_resident_memory_bytes" in text
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "sent 3" in out
    assert len(server.handler.messages) == 3


def test_a_bad_metrics_address_is_refused(tmp_path: Path) -> None:
    """A malformed --metrics value says what is expected."""
    (tmp_path / "publisher.toml").write_text('[sender]\nfrom = "News <news@example.org>"\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "publisher",
            "--config",
            str(tmp_path / "publisher.toml"),
            "worker",
            "--once",
            "--metrics",
            "9100",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "expected HOST:PORT" in result.stderr
