"""The HTTP client every web source shares: one connection pool, bounded, patient.

One :class:`HttpClient` per collection pass wraps one ``httpx.AsyncClient``. It bounds
how many requests run at once, retries what is worth retrying (connection and read
errors, timeouts, 429 and 5xx) with exponential backoff and jitter, honours
``Retry-After`` up to a cap, sends conditional requests (RFC 9110 §13.1: ``If-None-Match``,
``If-Modified-Since``) and refuses bodies larger than ``max_bytes``. Anything else is a
:class:`~publisher.errors.SourceError` naming the source and the URL.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import httpx

from publisher.errors import SourceError
from publisher.settings import HttpSettings

# Worth another attempt: the next one may well succeed.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A final answer: 200 with its body, or 304 with none."""

    url: str  # after redirects: the base for the page's relative links
    status: int
    headers: Mapping[str, str] = field(hash=False)  # case-insensitive (httpx.Headers)
    content: bytes = field(default=b"", repr=False)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


class HttpClient:
    """``async with HttpClient(settings) as http: await http.get(url, source=name)``."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._timeout = settings.timeout.total_seconds()
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            timeout=httpx.Timeout(self._timeout),
            headers={"User-Agent": settings.user_agent},
            limits=httpx.Limits(max_connections=settings.concurrency),
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        source: str,
    ) -> HttpResponse:
        """GET ``url``; 200 and 304 are answers, anything else raises SourceError."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempts = self._settings.retries + 1
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                # The semaphore is held for the request only, not for the backoff sleep.
                async with self._semaphore, asyncio.timeout(self._timeout):
                    response = await self._attempt(url, headers, source)
            except (*_RETRY_ERRORS, TimeoutError) as exc:
                if last:
                    raise SourceError(
                        f"{source}: {url}: {_describe(exc, self._timeout)}{_after(attempts)}"
                    ) from exc
                delay = self._delay(attempt)
            except httpx.HTTPError as exc:  # not worth retrying: a bad URL, a loop…
                raise SourceError(f"{source}: {url}: {_describe(exc, self._timeout)}") from exc
            else:
                if response.status in {200, 304}:
                    return response
                reason = httpx.codes.get_reason_phrase(response.status)
                if response.status not in _RETRY_STATUSES or last:
                    raise SourceError(
                        f"{source}: {url}: HTTP {response.status} {reason}".rstrip()
                        + (_after(attempts) if response.status in _RETRY_STATUSES else "")
                    )
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if retry_after is None:
                    delay = self._delay(attempt)
                else:
                    delay = min(retry_after, self._max_retry_after)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    async def _attempt(self, url: str, headers: dict[str, str], source: str) -> HttpResponse:
        limit = self._settings.max_bytes
        try:
            request = self._client.build_request("GET", url, headers=headers)
        except httpx.InvalidURL as exc:
            raise SourceError(f"{source}: {url}: not a valid URL: {exc}") from exc
        response = await self._client.send(request, stream=True)
        try:
            final = HttpResponse(str(response.url), response.status_code, response.headers)
            if response.status_code != 200:
                return final  # 304 has no body; other statuses are judged by the caller
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise SourceError(
                    f"{source}: {url}: the body is {declared} bytes, more than the "
                    f"limit of {limit} (http.max_bytes)"
                )
            chunks: list[bytes] = []
            size = 0
            # Counted after Content-Encoding is undone, so a small gzip bomb stops too.
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise SourceError(
                        f"{source}: {url}: the body is more than the limit of {limit} "
                        "bytes (http.max_bytes)"
                    )
                chunks.append(chunk)
            return HttpResponse(final.url, final.status, final.headers, b"".join(chunks))
        finally:
            await response.aclose()

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        ceiling = min(self._max_backoff, self._backoff * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - not crypto


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date
    (RFC 9110 §10.2.3). ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" dates come back naive; HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _describe(exc: Exception, timeout: float) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc or type(exc).__name__})"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "not an http(s) URL"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _after(attempts: int) -> str:
    return f" (after {attempts} attempts)" if attempts > 1 else ""
