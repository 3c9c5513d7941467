"""One collection pass: every source at once, each into the store, none stopping another."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from publisher.errors import PublisherError, SourceError
from publisher.metrics import METRICS, Metrics
from publisher.settings import (
    FeedSourceSettings,
    FolderSourceSettings,
    HtmlSourceSettings,
    Settings,
    SourceSettings,
)
from publisher.sources import Source, SourceResult
from publisher.sources._http import HttpClient
from publisher.sources.feed import FeedSource
from publisher.sources.folder import FolderSource
from publisher.sources.html import HtmlSource
from publisher.store.items import assign_entry_ids, save_items
from publisher.store.sources import SourceRun, load_state, record_run
from publisher.taxonomy import Taxonomy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceReport:
    """How one source's collection went."""

    source: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    not_modified: bool = False
    error: str | None = None
    problems: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems


def build_source(settings: SourceSettings, *, taxonomy: Taxonomy, http: HttpClient) -> Source:
    match settings:
        case FolderSourceSettings():
            return FolderSource(settings, taxonomy=taxonomy)
        case FeedSourceSettings():
            return FeedSource(settings, taxonomy=taxonomy, http=http)
        case HtmlSourceSettings():
            return HtmlSource(settings, taxonomy=taxonomy, http=http)


async def collect(
    settings: Settings,
    engine: Engine,
    *,
    taxonomy: Taxonomy,
    only: Sequence[str] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    metrics: Metrics = METRICS,
    progress: Callable[[SourceReport], None] | None = None,
) -> list[SourceReport]:
    """Collect every enabled source (or those named in ``only``) into the store;
    ``progress`` is called with each source's report as it finishes."""
    chosen = [s for s in settings.sources if (s.name in only if only is not None else s.enabled)]

    async def one(source: Source) -> SourceReport:
        report = await _collect_one(source, engine, clock, entry_id_prefix=settings.entry_id_prefix)
        if progress is not None:
            progress(report)
        return report

    async with HttpClient(settings.http) as http:
        reports = await asyncio.gather(
            *(one(build_source(s, taxonomy=taxonomy, http=http)) for s in chosen)
        )
    for report in reports:
        metrics.record_collection(report)
    return list(reports)


async def _collect_one(
    source: Source, engine: Engine, clock: Callable[[], datetime], *, entry_id_prefix: str
) -> SourceReport:
    started, began = clock(), time.perf_counter()
    state = await asyncio.to_thread(_load_state, engine, source.name)
    error: str | None = None
    result = SourceResult(items=())
    try:
        result = await source.fetch(state)
    except SourceError as exc:
        error = str(exc)
    except Exception as exc:
        log.exception("source %s failed unexpectedly", source.name, extra={"source": source.name})
        error = f"{source.name}: unexpected {type(exc).__name__}: {exc}"
    now = clock()
    try:
        # The store is synchronous: keep it off the event loop the web app shares.
        run = await asyncio.to_thread(
            _store, engine, source.name, result, error, started, now, entry_id_prefix
        )
    except (PublisherError, SQLAlchemyError) as exc:
        # The store refused this source's items (nothing of them was written: one
        # transaction); the other sources go on.
        log.error("%s: cannot store the items: %s", source.name, exc, extra={"source": source.name})
        return SourceReport(
            source=source.name,
            error=f"{source.name}: cannot store the items: {exc}",
            seconds=time.perf_counter() - began,
        )
    for problem in result.problems:
        log.warning("%s: %s", source.name, problem, extra={"source": source.name})
    if error:
        log.error("%s", error, extra={"source": source.name})
    return SourceReport(
        source=source.name,
        new=run.new,
        updated=run.updated,
        unchanged=run.unchanged,
        not_modified=run.not_modified,
        error=run.error,
        problems=run.problems,
        seconds=time.perf_counter() - began,
    )


def _load_state(engine: Engine, name: str) -> dict[str, str]:
    with engine.connect() as conn:
        return load_state(conn, name)


def _store(
    engine: Engine,
    name: str,
    result: SourceResult,
    error: str | None,
    started: datetime,
    now: datetime,
    entry_id_prefix: str,
) -> SourceRun:
    """Save one source's items and record its run, in one transaction."""
    with engine.begin() as conn:
        counts = save_items(conn, name, result.items, now=now)
        if counts.new:
            assign_entry_ids(conn, entry_id_prefix)
        run = SourceRun(
            source=name,
            started_at=started,
            finished_at=now,
            new=counts.new,
            updated=counts.updated,
            unchanged=counts.unchanged,
            not_modified=result.not_modified,
            error=error,
            problems=result.problems,
        )
        record_run(conn, run, state=None if error else result.state)
    return run
