"""`publisher run` as operators start it: the secret-key check and stopping on a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from publisher.cli import cli
from tests.processes import ServerLog

STOP_SECONDS = 20


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty deployment in tmp_path, with no PUBLISHER_* variables set."""
    for name in list(os.environ):
        if name.startswith("PUBLISHER_"):
            monkeypatch.delenv(name)
    (tmp_path / "subscriptions.yaml").write_text("subscribers: []\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", f"sqlite:///{tmp_path / 'publisher.db'}")
    return tmp_path


def test_run_refuses_the_default_secret_key(deployment: Path) -> None:
    """With the published default key `publisher run` exits 1 naming PUBLISHER_SECRET_KEY."""
    result = CliRunner().invoke(cli, ["run", "--port", "0"])
    assert result.exit_code == 1
    assert "secret_key is the default" in result.output
    assert "set PUBLISHER_SECRET_KEY" in result.output
    assert not (deployment / "publisher.db").exists()  # refused before opening the store


def test_run_refuses_broken_subscriptions(
    deployment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken subscriptions.yaml stops `publisher run` with file:line:column, before serving."""
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "run-test-key")
    (deployment / "subscriptions.yaml").write_text(
        "subscribers:\n  - email: not-an-address\n", encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["run", "--port", "0"])
    assert result.exit_code == 1
    assert "nothing was done" in result.output and "subscriptions.yaml:2:" in result.output


def _run_and_stop(
    deployment: Path, stop: signal.Signals, *options: str
) -> tuple[httpx.Response, int, ServerLog]:
    """Start `publisher [options] run`, GET /healthz, send ``stop``: the answer, the exit
    status and the output."""
    env = dict(os.environ, PUBLISHER_SECRET_KEY="run-test-key")
    with subprocess.Popen(
        [sys.executable, "-m", "publisher", *options, "run", "--port", "0"],
        cwd=deployment,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        log = ServerLog(process, "publisher run")
        try:
            url = log.wait_started()
            response = httpx.get(f"{url}/healthz", timeout=10)
            process.send_signal(stop)
            status = process.wait(timeout=STOP_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
            log.finish()
    return response, status, log


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_serves_and_stops_on_a_signal(deployment: Path, stop: signal.Signals) -> None:
    """`publisher run` answers /healthz and exits 0 on SIGTERM or SIGINT, without a traceback."""
    response, status, log = _run_and_stop(deployment, stop)
    assert response.status_code == 200
    assert status == 0, log.text()
    assert "Application shutdown complete" in log.text()
    assert "Traceback" not in log.text()


def test_run_refuses_an_smtp_username_without_a_password(
    deployment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SMTP credentials that cannot work stop `publisher run` at once, naming the setting."""
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "run-test-key")
    monkeypatch.setenv("PUBLISHER_SMTP_USERNAME", "mailer")
    result = CliRunner().invoke(cli, ["run", "--port", "0"])
    assert result.exit_code == 1
    assert "smtp.username = 'mailer' but no password" in result.output


def test_run_logs_uvicorn_lines_as_json_when_asked(deployment: Path) -> None:
    """With --log-format json, uvicorn's startup and access lines are JSON objects too."""
    _, status, log = _run_and_stop(deployment, signal.SIGTERM, "--log-format", "json")
    assert status == 0, log.text()
    lines = [line for line in log.lines if line.strip()]
    not_json = [line for line in lines if not line.startswith("{")]
    assert not not_json, log.text()
    records = [json.loads(line) for line in lines]
    assert any(
        r["logger"] == "uvicorn.error" and "Uvicorn running on" in r["message"] for r in records
    )
    assert any(r["logger"] == "uvicorn.access" and "/healthz" in r["message"] for r in records)
