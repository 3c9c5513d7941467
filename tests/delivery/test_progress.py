"""The progress callbacks behind the command-line progress bars: called once per step."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Engine

from publisher.collect import SourceReport, collect
from publisher.delivery import SmtpTransport
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.feeds import FeedBuilder
from publisher.feeds.static import build_static
from publisher.settings import Settings
from publisher.taxonomy import load_taxonomy
from tests.delivery.conftest import MailServer
from tests.delivery.test_worker import SETTINGS, Clock, _enqueue

REPO = Path(__file__).resolve().parents[2]


def test_the_worker_reports_each_message_as_it_is_done(engine: Engine, server: MailServer) -> None:
    """Five messages, five outcomes, in the order they finish."""
    _enqueue(engine, [f"r{n}@example.net" for n in range(5)])
    outcomes: list[DeliveryReport] = []

    async def go() -> DeliveryReport:
        async with SmtpTransport(server.settings()) as transport:
            worker = Worker(engine, transport, settings=SETTINGS, clock=Clock())
            return await worker.run_once(progress=outcomes.append)

    assert asyncio.run(go()) == DeliveryReport(sent=5)
    assert outcomes == [DeliveryReport(sent=1)] * 5


def test_collection_and_feed_building_report_their_steps(tmp_path: Path, engine: Engine) -> None:
    """One call per source collected; one per feed built, ending at the total."""
    settings = Settings(
        base_url="https://news.example.org",
        locales=["en", "ru"],
        sources=[{"name": "newsroom", "kind": "folder", "path": str(REPO / "content")}],
    )
    taxonomy = load_taxonomy()
    sources: list[SourceReport] = []
    asyncio.run(collect(settings, engine, taxonomy=taxonomy, progress=sources.append))
    assert [report.source for report in sources] == ["newsroom"]
    steps: list[tuple[int, int]] = []
    builder = FeedBuilder(settings, taxonomy=taxonomy)
    build_static(builder, engine, tmp_path / "feeds", progress=lambda d, t: steps.append((d, t)))
    total = steps[-1][1]
    assert steps == [(n, total) for n in range(1, total + 1)]
    assert total == 2 * (1 + len(taxonomy.fields_of_work) + len(taxonomy.countries))
