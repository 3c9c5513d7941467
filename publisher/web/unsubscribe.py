"""``/u/{token}``: the unsubscribe confirmation page and the RFC 8058 one-click endpoint.

``GET`` only shows a page with one button: link scanners and previews fetch every URL
in a message, so a GET never unsubscribes (RFC 8058 §1). ``POST`` unsubscribes at once;
it is both the mail client's one-click request (body ``List-Unsubscribe=One-Click``,
form-encoded or multipart, RFC 8058 §3.2) and the page's button. Any POST with a valid
token acts, whatever its body: the body only tells which of the two it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from publisher.store.suppressions import Reason, Source, suppress
from publisher.unsubscribe import read_token
from publisher.web._pages import Pages

log = logging.getLogger(__name__)
# Enough of a body to see the one-click field; the rest is never read.
_BODY_PEEK = 8192
_ONE_CLICK_FIELD = b"List-Unsubscribe"
# Personal pages: not cached by proxies, not indexed if a link is ever published.
_PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


async def _body_start(request: Request) -> bytes:
    received = bytearray()
    async with aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            received += chunk
            if len(received) >= _BODY_PEEK:
                break
    return bytes(received[:_BODY_PEEK])


@dataclass(frozen=True, slots=True)
class UnsubscribeEndpoints:
    engine: Engine
    pages: Pages
    secret_keys: Sequence[str]
    list_id: str
    clock: Callable[[], datetime]
    # The language of a subscriber's rule, when the address is subscribed.
    locale_of: Callable[[str], str | None] = lambda address: None

    def routes(self) -> list[Route]:
        # One route for both methods, so that a 405 lists them all in Allow.
        return [Route("/u/{token}", self._dispatch, methods=["GET", "POST"], name="unsubscribe")]

    async def _dispatch(self, request: Request) -> HTMLResponse:
        if request.method == "POST":
            return await self.unsubscribe(request)
        return await self.confirm(request)  # GET and HEAD

    def _address(self, request: Request) -> str | None:
        token = request.path_params["token"]
        return read_token(token, secret_keys=self.secret_keys, list_id=self.list_id)

    def _page(
        self,
        request: Request,
        name: str,
        status_code: int,
        address: str | None = None,
        **context: object,
    ) -> HTMLResponse:
        # The subscriber's own language first: the page answers their message.
        subscriber_locale = self.locale_of(address) if address is not None else None
        locale = self.pages.choose(subscriber_locale, request.headers.get("accept-language"))
        if address is not None:
            context["address"] = address
        html = self.pages.render(name, locale, context)
        return HTMLResponse(html, status_code=status_code, headers=_PRIVATE)

    def _invalid(self, request: Request) -> HTMLResponse:
        # One answer for every failure: which part of a token was wrong is not told.
        return self._page(request, "web/invalid.html", 400)

    async def confirm(self, request: Request) -> HTMLResponse:
        address = self._address(request)
        if address is None:
            return self._invalid(request)
        return self._page(
            request, "web/confirm.html", 200, address=address, action=request.url.path
        )

    async def unsubscribe(self, request: Request) -> HTMLResponse:
        address = self._address(request)
        if address is None:
            return self._invalid(request)
        body = await _body_start(request)
        source = Source.ONE_CLICK if _ONE_CLICK_FIELD in body else Source.WEB
        try:
            await run_in_threadpool(self._suppress, address, source)
        except SQLAlchemyError:
            log.exception("cannot record an unsubscribe")
            return self._page(request, "web/error.html", 503, status=503)
        return self._page(request, "web/unsubscribed.html", 200, address=address)

    def _suppress(self, address: str, source: Source) -> None:
        with self.engine.begin() as conn:
            new = suppress(
                conn, address, reason=Reason.UNSUBSCRIBED, now=self.clock(), source=source
            )
        if new:
            log.info("unsubscribed an address (%s)", source.value)
