"""Reading a server subprocess's output without blocking the test forever."""

from __future__ import annotations

import re
import socket
import subprocess
import threading

import pytest

STARTUP_SECONDS = 30
_RUNNING = re.compile(r"Uvicorn running on (http://\S+)")


class ServerLog:
    """The server's output, read by a thread so that waiting for it is bounded in time."""

    def __init__(self, process: subprocess.Popen[str], command: str) -> None:
        self.command = command
        self.lines: list[str] = []
        self.url: str | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            if self.url is None and (match := _RUNNING.search(line)):
                self.url = match[1]
                self._started.set()
        self._started.set()

    def wait_started(self) -> str:
        self._started.wait(STARTUP_SECONDS)
        if self.url is None:
            pytest.fail(f"{self.command} did not start:\n" + self.text())
        return self.url

    def finish(self) -> None:
        self._thread.join(STARTUP_SECONDS)

    def text(self) -> str:
        return "".join(self.lines)


def free_port() -> int:
    """A loopback port nothing listens on (the system's choice, free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
