"""The shared HTTP client, against a real local server."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from publisher.errors import SourceError
from publisher.sources._http import HttpClient, HttpResponse, parse_retry_after
from tests.sources.conftest import BIG, LAST_MODIFIED, FixtureServer

MakeClient = Callable[..., HttpClient]


def get(make_client: MakeClient, url: str, **options: object) -> HttpResponse:
    timeout = options.pop("timeout", 5)
    retries = options.pop("retries", 2)
    max_bytes = options.pop("max_bytes", 1_000_000)

    async def main() -> HttpResponse:
        async with make_client(timeout=timeout, retries=retries, max_bytes=max_bytes) as http:
            return await http.get(url, source="newsroom", **options)  # type: ignore[arg-type]

    return asyncio.run(main())


def test_get_returns_body_and_case_insensitive_headers(
    server: FixtureServer, make_client: MakeClient
) -> None:
    """A 200 gives the body, and ETag/Last-Modified/Content-Type in any letter case."""
    response = get(make_client, server.url("/feeds/rss.xml"))
    assert response.status == 200
    assert response.content.startswith(b"<?xml")
    assert response.etag and response.etag == response.headers["ETAG"]
    assert response.last_modified == LAST_MODIFIED
    assert response.content_type == "application/xml"
    assert server.hits("/feeds/rss.xml")[0]["User-Agent"] == "publisher-tests/1.0"


def test_conditional_get_sends_validators_and_returns_304(
    server: FixtureServer, make_client: MakeClient
) -> None:
    """If-None-Match and If-Modified-Since are sent, and a 304 is an answer, not an error."""
    first = get(make_client, server.url("/feeds/rss.xml"))
    second = get(
        make_client,
        server.url("/feeds/rss.xml"),
        etag=first.etag,
        last_modified=first.last_modified,
    )
    assert second.not_modified and second.content == b""
    sent = server.hits("/feeds/rss.xml")[1]
    assert sent["If-None-Match"] == first.etag
    assert sent["If-Modified-Since"] == LAST_MODIFIED


def test_redirects_are_followed_and_final_url_kept(
    server: FixtureServer, make_client: MakeClient
) -> None:
    """A redirect is followed; the response's URL is where the content came from."""
    response = get(make_client, server.url("/redirect"))
    assert response.status == 200
    assert response.url == server.url("/feeds/rss.xml")


def test_server_error_is_retried_then_raised(
    server: FixtureServer, make_client: MakeClient
) -> None:
    """A 500 is tried 1 + retries times, then a SourceError names source, URL, status."""
    url = server.url("/status/500")
    with pytest.raises(SourceError) as caught:
        get(make_client, url, retries=2)
    assert len(server.hits("/status/500")) == 3
    message = str(caught.value)
    assert message.startswith(f"newsroom: {url}: HTTP 500 Internal Server Error")
    assert "after 3 attempts" in message


def test_client_error_is_not_retried(server: FixtureServer, make_client: MakeClient) -> None:
    """A 404 will not get better: one request, then a SourceError."""
    with pytest.raises(SourceError, match="HTTP 404 Not Found"):
        get(make_client, server.url("/status/404"), retries=3)
    assert len(server.hits("/status/404")) == 1


def test_503_then_200_succeeds(server: FixtureServer, make_client: MakeClient) -> None:
    """A passing 503 is retried and the second answer is returned."""
    response = get(make_client, server.url("/flaky"), retries=1)
    assert response.content == b"ok now"
    assert len(server.hits("/flaky")) == 2


def test_retry_after_is_honoured_up_to_the_cap(
    server: FixtureServer, make_client: MakeClient
) -> None:
    """A 429 asking for an hour waits only as long as the client's cap."""
    started = time.monotonic()
    response = get(make_client, server.url("/rate-limited"), retries=1)
    assert response.content == b"ok now"
    assert time.monotonic() - started < 1


def test_timeout_raises_source_error_quickly(
    server: FixtureServer, make_client: MakeClient
) -> None:
    """A server slower than the timeout gives a SourceError, in about the timeout."""
    url = server.url("/slow")
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"timed out after 0\.2 s \(after 2 attempts\)"):
        get(make_client, url, timeout=0.2, retries=1)
    assert time.monotonic() - started < 1.5
    assert len(server.hits("/slow")) == 2


def test_connection_refused_chains_the_cause(make_client: MakeClient) -> None:
    """A closed port gives a SourceError naming the URL, with httpx's error as cause."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed.xml"
    with pytest.raises(SourceError, match=f"newsroom: {re.escape(url)}: cannot connect") as caught:
        get(make_client, url, retries=0)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("path", ["/big", "/big-undeclared"])
def test_oversize_body_raises(server: FixtureServer, make_client: MakeClient, path: str) -> None:
    """A body over max_bytes is refused, whether Content-Length announces it or not."""
    with pytest.raises(SourceError, match=r"more than the limit of 4096 bytes|limit of 4096"):
        get(make_client, server.url(path), max_bytes=4096)
    assert len(server.hits(path)) == 1  # not retried: it would be as big next time
    assert get(make_client, server.url(path), max_bytes=BIG).content == b"x" * BIG


def test_not_http_url_raises(make_client: MakeClient) -> None:
    """A URL httpx cannot fetch is a SourceError, not an httpx exception."""
    with pytest.raises(SourceError, match=r"ftp://example\.org/feed: not an http"):
        get(make_client, "ftp://example.org/feed")


def test_concurrency_is_bounded(server: FixtureServer, make_client: MakeClient) -> None:
    """No more requests run at once than the concurrency setting allows."""

    async def main() -> None:
        async with make_client(concurrency=2) as http:
            url = server.url("/a-little-slow")
            await asyncio.gather(*(http.get(url, source="newsroom") for _ in range(6)))

    asyncio.run(main())
    assert len(server.hits("/a-little-slow")) == 6
    assert server.max_in_flight == 2


def test_parse_retry_after_reads_seconds_and_dates() -> None:
    """Retry-After is delta-seconds or an HTTP-date; anything else is ignored."""
    now = datetime(2024, 12, 6, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Fri, 06 Dec 2024 12:01:30 GMT", now=now) == 90
    assert parse_retry_after("Fri, 06 Dec 2024 11:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
