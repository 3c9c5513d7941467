"""A real HTTP server on 127.0.0.1 for the web sources, serving ``fixtures/``.

Static files are served with an ETag and a Last-Modified and answer conditional
requests with 304. A few dynamic routes misbehave on purpose (500, 503 then 200, 429,
a slow answer, an oversize body). Every request is recorded so that tests can assert
what the client sent and how often.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from publisher.settings import HttpSettings
from publisher.sources._http import HttpClient
from publisher.taxonomy import Taxonomy, load_taxonomy

FIXTURES = Path(__file__).parent / "fixtures"
LAST_MODIFIED = "Fri, 06 Dec 2024 13:32:00 GMT"
BIG = 64 * 1024
_TYPES = {".xml": "application/xml", ".html": "text/html; charset=utf-8"}


@dataclass
class FixtureServer:
    """The server's address and what it has seen."""

    base_url: str = ""
    requests: list[tuple[str, Message]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def hits(self, path: str) -> list[Message]:
        """The headers of every request for ``path``, in order."""
        with self.lock:
            return [headers for p, headers in self.requests if p == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest's output clean

    def do_GET(self) -> None:
        fixture = self.server.fixture
        path = urlsplit(self.path).path
        with fixture.lock:
            fixture.requests.append((path, self.headers))
            fixture.in_flight += 1
            fixture.max_in_flight = max(fixture.max_in_flight, fixture.in_flight)
        try:
            route = _ROUTES.get(path, _static)
            route(self, len(fixture.hits(path)))
        finally:
            with fixture.lock:
                fixture.in_flight -= 1

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping must not hold up the teardown
    fixture: FixtureServer

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up (timeouts, refused bodies) are what some tests are about.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _static(handler: _Handler, hit: int) -> None:
    relative = urlsplit(handler.path).path.lstrip("/")
    path = (FIXTURES / relative).resolve()
    if not path.is_file() or FIXTURES.resolve() not in path.parents:
        handler.send(404, b"not found", {"Content-Type": "text/plain"})
        return
    body = path.read_bytes()
    content_type = _TYPES.get(path.suffix, "application/octet-stream")
    # The windows-1251 pages are kept readable (UTF-8) and encoded when served: one
    # names its charset only in Content-Type, the other only in its <meta>.
    if "cp1251" in path.name:
        body = body.decode("utf-8").encode("windows-1251")
        charset = "; charset=windows-1251" if "header" in path.name else ""
        content_type = f"text/html{charset}"
    etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
    headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED, "Content-Type": content_type}
    if etag in handler.headers.get("If-None-Match", "") or (
        "If-None-Match" not in handler.headers
        and handler.headers.get("If-Modified-Since") == LAST_MODIFIED
    ):
        handler.send(304, headers={"ETag": etag, "Last-Modified": LAST_MODIFIED})
        return
    handler.send(200, body, headers)


def _status_500(handler: _Handler, hit: int) -> None:
    handler.send(500, b"boom", {"Content-Type": "text/plain"})


def _status_404(handler: _Handler, hit: int) -> None:
    handler.send(404, b"not found", {"Content-Type": "text/plain"})


def _flaky(handler: _Handler, hit: int) -> None:
    if hit == 1:
        handler.send(503, b"try later", {"Content-Type": "text/plain"})
    else:
        handler.send(200, b"ok now", {"Content-Type": "text/plain"})


def _rate_limited(handler: _Handler, hit: int) -> None:
    if hit == 1:
        handler.send(429, b"slow down", {"Retry-After": "3600", "Content-Type": "text/plain"})
    else:
        handler.send(200, b"ok now", {"Content-Type": "text/plain"})


def _slow(handler: _Handler, hit: int) -> None:
    handler.server.fixture.stopping.wait(2)  # far longer than the tests' client timeout
    handler.send(200, b"too late", {"Content-Type": "text/plain"})


def _a_little_slow(handler: _Handler, hit: int) -> None:
    time.sleep(0.05)
    handler.send(200, b"ok", {"Content-Type": "text/plain"})


def _big(handler: _Handler, hit: int) -> None:
    handler.send(200, b"x" * BIG, {"Content-Type": "text/plain"})


def _big_undeclared(handler: _Handler, hit: int) -> None:
    # No Content-Length: the body ends when the connection closes (RFC 9112 §6.3),
    # so only counting while reading can stop it.
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    for _ in range(BIG // 1024):
        handler.wfile.write(b"x" * 1024)


def _redirect(handler: _Handler, hit: int) -> None:
    handler.send(302, headers={"Location": "/feeds/rss.xml"})


_ROUTES: dict[str, Callable[[_Handler, int], None]] = {
    "/status/500": _status_500,
    "/status/404": _status_404,
    "/flaky": _flaky,
    "/rate-limited": _rate_limited,
    "/slow": _slow,
    "/a-little-slow": _a_little_slow,
    "/big": _big,
    "/big-undeclared": _big_undeclared,
    "/redirect": _redirect,
}


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    fixture = FixtureServer()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.fixture = fixture
    fixture.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    # A short poll interval: shutdown() waits for the next poll.
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="fixture-http"
    )
    thread.start()
    try:
        yield fixture
    finally:
        fixture.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture
def make_client() -> Callable[..., HttpClient]:
    """A factory of clients whose backoff costs milliseconds (make it inside the test's
    event loop)."""
    return _client


def _client(
    *, timeout: float = 5, retries: int = 2, concurrency: int = 4, max_bytes: int = 1_000_000
) -> HttpClient:
    settings = HttpSettings(
        timeout=timeout,
        retries=retries,
        concurrency=concurrency,
        user_agent="publisher-tests/1.0",
        max_bytes=max_bytes,
    )
    return HttpClient(settings, backoff=0.01, max_retry_after=0.05)
