"""The Starlette application: feeds, unsubscribe pages, health, metrics, security headers,
error pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

from jinja2 import TemplateNotFound
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from publisher.errors import SettingsError
from publisher.feeds import FeedBuilder
from publisher.metrics import METRICS, Metrics, metrics_routes
from publisher.resources import bundled
from publisher.settings import Settings
from publisher.taxonomy import Taxonomy, load_taxonomy
from publisher.web._headers import SECURITY_HEADERS, SecurityHeadersMiddleware
from publisher.web._pages import Pages
from publisher.web.feeds import FeedEndpoints
from publisher.web.health import health_routes
from publisher.web.subscribers import SubscriberLocales
from publisher.web.unsubscribe import UnsubscribeEndpoints

PAGES = ("web/confirm.html", "web/unsubscribed.html", "web/invalid.html", "web/error.html")


def _now() -> datetime:
    return datetime.now(UTC)


def _list_name(settings: Settings) -> str:
    """The sender's display name ("News"), else its domain, for the pages' wording."""
    name, address = parseaddr(settings.sender.from_)
    return name or address.rpartition("@")[2] or settings.base_url


def _template_dirs(settings: Settings, templates_dir: Path | None) -> list[Path]:
    if templates_dir is not None:
        return [templates_dir]
    # An operator's own templates override the bundled ones file by file.
    return [d for d in (settings.templates, bundled("templates")) if d is not None]


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    templates_dir: Path | None = None,
    clock: Callable[[], datetime] = _now,
    taxonomy: Taxonomy | None = None,
    subscriber_locale: Callable[[str], str | None] | None = None,
    metrics: Metrics = METRICS,
) -> Starlette:
    """The web app over ``engine``; tokens signed with a previous secret key still work."""
    taxonomy = taxonomy if taxonomy is not None else load_taxonomy(settings.taxonomy)
    feeds = FeedEndpoints(FeedBuilder(settings, taxonomy=taxonomy), engine, metrics=metrics)
    dirs = _template_dirs(settings, templates_dir)
    pages = Pages(
        dirs,
        locales=settings.locales,
        default_locale=settings.default_locale,
        common={"list_name": _list_name(settings)},
    )
    try:
        pages.check(PAGES)
    except TemplateNotFound as exc:
        where = ", ".join(str(d) for d in dirs)
        raise SettingsError(f"templates: {exc.name} not found in {where}") from exc

    unsubscribe = UnsubscribeEndpoints(
        engine=engine,
        pages=pages,
        secret_keys=[settings.secret_key, *settings.previous_secret_keys],
        list_id=settings.list_id,
        clock=clock,
        locale_of=subscriber_locale
        or SubscriberLocales(settings.subscriptions, taxonomy=taxonomy, locales=settings.locales),
    )

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # registered for HTTPException only
            raise exc
        locale = pages.negotiate(request.headers.get("accept-language"))
        html = pages.render("web/error.html", locale, {"status": exc.status_code})
        return HTMLResponse(html, status_code=exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette answers this outside the middleware stack: add the headers here.
        return PlainTextResponse(
            "Internal Server Error", status_code=500, headers=dict(SECURITY_HEADERS)
        )

    return Starlette(
        routes=[
            *unsubscribe.routes(),
            *feeds.routes(),
            *health_routes(engine),
            *metrics_routes(metrics, engine),
        ],
        middleware=[Middleware(SecurityHeadersMiddleware)],
        exception_handlers={HTTPException: http_error, 500: server_error},
    )
