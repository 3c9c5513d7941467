"""WebSub (W3C Recommendation, 2018): tell the hub which feeds changed.

The publish ping is the de-facto form the common hubs accept: a form POST with
``hub.mode=publish`` and ``hub.url`` set to the changed feed. One request per feed,
a few at a time; a hub that fails is logged and never stops a collection or a build.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

log = logging.getLogger(__name__)

CONCURRENCY = 4
TIMEOUT_SECONDS = 10.0


@dataclass(slots=True)
class PingReport:
    accepted: int = 0
    failed: list[str] = field(default_factory=list)  # "URL: reason"


async def ping_hub(hub: str, urls: Iterable[str], *, user_agent: str) -> PingReport:
    """POST a publish notification to ``hub`` for each of ``urls``."""
    report = PingReport()
    gate = asyncio.Semaphore(CONCURRENCY)
    headers = {"User-Agent": user_agent}

    async def one(client: httpx.AsyncClient, url: str) -> None:
        async with gate:
            try:
                response = await client.post(
                    hub, data={"hub.mode": "publish", "hub.url": url}, headers=headers
                )
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: not an HTTPError
                report.failed.append(f"{url}: {type(exc).__name__}: {exc}")
                return
            if response.is_success:
                report.accepted += 1
            else:
                report.failed.append(f"{url}: the hub answered {response.status_code}")

    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
        await asyncio.gather(*(one(client, url) for url in urls))
    for failure in report.failed:
        log.warning("WebSub hub %s: %s", hub, failure)
    return report
