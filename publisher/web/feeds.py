"""``GET /feeds/<locale>/<feed>``: the feeds, cheap to poll.

Each answer carries a strong ETag (a digest of the bytes; the gzip variant has its
own) and a Last-Modified from the same build, ``Cache-Control: public, max-age``, and
``Vary: Accept-Encoding``. ``If-None-Match`` (which wins when both are sent) and
``If-Modified-Since`` turn an unchanged feed into a 304. Built feeds are kept in
memory per store revision, and the revision read is trusted for
``feeds.revision_ttl_ms``: polling an unchanged store costs no query and no thread.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

import anyio
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from publisher.feeds.build import BuiltFeed, FeedBuilder
from publisher.feeds.selection import store_revision
from publisher.feeds.spec import FeedFormat, FeedSpec, UnknownFeed
from publisher.feeds.static import opml
from publisher.metrics import METRICS, Metrics

CACHE_SIZE = 4096
GZIP_MIN_BYTES = 1024
OPML_TYPE = "text/x-opml; charset=utf-8"


@dataclass(frozen=True, slots=True)
class _Representation:
    data: bytes
    gzipped: bytes | None
    etag: str
    gzip_etag: str
    last_modified: datetime
    media_type: str


def _represent(built: BuiltFeed, media_type: str) -> _Representation:
    gzipped = (
        gzip.compress(built.data, compresslevel=6, mtime=0)
        if len(built.data) >= GZIP_MIN_BYTES
        else None
    )
    return _Representation(
        built.data,
        gzipped,
        built.etag,
        built.etag[:-1] + '-gzip"',
        built.last_modified,
        media_type,
    )


def _parse_path(path: str, query: list[tuple[str, str]], builder: FeedBuilder) -> FeedSpec:
    """``all.atom``, ``field/<slug>.rss``, ``country/<CODE>.json`` → the filter."""
    fields = [value for key, value in query if key == "field"]
    countries = [value for key, value in query if key == "country"]
    stem = path.rsplit(".", 1)[0]
    if stem == "all":
        return FeedSpec.parse(fields, countries, taxonomy=builder.taxonomy)
    kind, _, name = stem.partition("/")
    if fields or countries:
        raise UnknownFeed("field and country parameters go with all.<format> only")
    if kind == "field" and name:
        return FeedSpec.parse([name], [], taxonomy=builder.taxonomy)
    if kind == "country" and name:
        return FeedSpec.parse([], [name], taxonomy=builder.taxonomy)
    raise UnknownFeed(f"no feed at {path!r}")


def _format(path: str) -> FeedFormat:
    extension = path.rsplit(".", 1)[-1] if "." in path else ""
    try:
        return FeedFormat(extension)
    except ValueError:
        raise UnknownFeed(f"unknown feed format {extension!r}; use atom, rss or json") from None


class FeedEndpoints:
    def __init__(self, builder: FeedBuilder, engine: Engine, *, metrics: Metrics = METRICS) -> None:
        self._builder = builder
        self._engine = engine
        self._metrics = metrics
        self._max_age = int(builder.settings.feeds.max_age.total_seconds())
        self._cache: OrderedDict[tuple[str, str, str], tuple[object, _Representation]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self._revision: tuple[object, float] | None = None  # and when it was read
        self._revision_ttl = builder.settings.feeds.revision_ttl_ms / 1000

    def routes(self) -> list[Route]:
        return [Route("/feeds/{locale}/{path:path}", self.feed, methods=["GET"], name="feed")]

    async def feed(self, request: Request) -> Response:
        locale = request.path_params["locale"]
        path = request.path_params["path"]
        try:
            self._builder.check_locale(locale)
            if path == "feeds.opml":
                spec, fmt = None, None
            else:
                fmt = _format(path)
                spec = _parse_path(path, request.query_params.multi_items(), self._builder)
        except UnknownFeed as exc:
            return self._counted(request, PlainTextResponse(f"Not Found: {exc}\n", status_code=404))
        # A feed built at the revision seen less than a moment ago is answered here, on
        # the event loop: polls of an unchanged store cost no thread and no query.
        representation = self._fresh(locale, spec, fmt)
        if representation is None:
            representation = await anyio.to_thread.run_sync(self._get, locale, spec, fmt)
        return self._counted(request, self._answer(request, representation))

    def _counted(self, request: Request, response: Response) -> Response:
        # The server sends no body in answer to HEAD (RFC 9110 §9.3.2).
        size = 0 if request.method == "HEAD" else len(response.body)
        path = request.path_params["path"]
        self._metrics.record_feed_request(path, status=response.status_code, size=size)
        return response

    def _fresh(
        self, locale: str, spec: FeedSpec | None, fmt: FeedFormat | None
    ) -> _Representation | None:
        """The cached feed, when the store's revision was read less than REVISION_TTL ago
        and the feed was built at that revision."""
        seen = self._revision
        if seen is None or time.monotonic() - seen[1] > self._revision_ttl:
            return None
        key = (locale, spec.key if spec else "opml", str(fmt))
        with self._lock:
            cached = self._cache.get(key)
        return cached[1] if cached is not None and cached[0] == seen[0] else None

    def _get(self, locale: str, spec: FeedSpec | None, fmt: FeedFormat | None) -> _Representation:
        with self._engine.connect() as conn:
            revision = store_revision(conn)
            self._revision = (revision, time.monotonic())
            key = (locale, spec.key if spec else "opml", str(fmt))
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None and cached[0] == revision:
                    self._cache.move_to_end(key)
                    return cached[1]
            if spec is None or fmt is None:
                data = opml(self._builder, locale)
                built = BuiltFeed.of(data, self._builder.select(conn, FeedSpec()))
                representation = _represent(built, OPML_TYPE)
            else:
                built = self._builder.build(conn, locale, spec, fmt)
                representation = _represent(built, fmt.media_type)
        with self._lock:
            self._cache[key] = (revision, representation)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return representation

    def _answer(self, request: Request, feed: _Representation) -> Response:
        use_gzip = feed.gzipped is not None and _accepts_gzip(
            request.headers.get("accept-encoding", "")
        )
        headers = {
            "ETag": feed.gzip_etag if use_gzip else feed.etag,
            "Last-Modified": format_datetime(feed.last_modified, usegmt=True),
            "Cache-Control": f"public, max-age={self._max_age}",
            "Vary": "Accept-Encoding",
        }
        if _not_modified(request, feed, headers["ETag"]):
            return Response(status_code=304, headers=headers)
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        body = feed.gzipped if use_gzip and feed.gzipped is not None else feed.data
        return Response(body, headers=headers, media_type=feed.media_type)


def _not_modified(request: Request, feed: _Representation, etag: str) -> bool:
    """RFC 9110 §13.2.2: If-None-Match first, compared (weakly) with the ETag of the
    representation that would be sent; If-Modified-Since only without it."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return etag in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored (RFC 9110 §13.1.3)
    if since.tzinfo is None:
        return False
    return feed.last_modified <= since


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, parameters = part.strip().partition(";")
        if coding.strip().lower() in {"gzip", "x-gzip", "*"}:
            q = parameters.strip().removeprefix("q=")
            try:
                return not parameters.strip() or float(q) > 0
            except ValueError:
                return False
    return False
