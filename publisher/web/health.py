"""``GET /healthz``: 200 when the database answers, 503 when it does not."""

from __future__ import annotations

import logging

import anyio
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger(__name__)
# A database that takes longer than this to answer SELECT 1 counts as down.
TIMEOUT_SECONDS = 5.0
_NO_CACHE = {"Cache-Control": "no-store"}


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def health_routes(engine: Engine) -> list[Route]:
    async def healthz(request: Request) -> JSONResponse:
        try:
            with anyio.fail_after(TIMEOUT_SECONDS):
                # Abandoned on timeout: a hung connection must not hang the answer.
                await anyio.to_thread.run_sync(_ping, engine, abandon_on_cancel=True)
        except (SQLAlchemyError, TimeoutError) as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503, headers=_NO_CACHE)
        return JSONResponse({"status": "ok"}, headers=_NO_CACHE)

    return [Route("/healthz", healthz, methods=["GET"], name="healthz")]
