"""`publisher serve` answers real HTTP and stops gracefully on SIGTERM and SIGINT."""

from __future__ import annotations

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


def _start(
    tmp_path: Path, *args: str, secret: str | None = "serve-test-key"
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env["PUBLISHER_DATABASE_URL"] = f"sqlite:///{tmp_path / 'publisher.db'}"
    if secret is not None:
        env["PUBLISHER_SECRET_KEY"] = secret
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "serve", "--port", "0", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_healthz_over_http_and_stops_on_a_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """A real request to /healthz on a free port gets 200; a signal stops the server cleanly."""
    with _start(tmp_path) as process:
        log = ServerLog(process, "publisher serve")
        try:
            url = log.wait_started()
            response = httpx.get(f"{url}/healthz", timeout=10)
            process.send_signal(stop)
            status = process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
            log.finish()
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers
    assert status == 0, log.text()
    assert "Application shutdown complete" in log.text()
    assert "Finished server process" in log.text()
    assert "Traceback" not in log.text()


def test_serve_refuses_the_default_secret_key_on_a_public_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the published default key, listening beyond loopback is refused with a reason."""
    for name in list(os.environ):
        if name.startswith("PUBLISHER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", f"sqlite:///{tmp_path / 'publisher.db'}")
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "set PUBLISHER_SECRET_KEY" in result.output
