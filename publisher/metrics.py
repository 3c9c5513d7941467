"""What the running service counts, for Prometheus: ``GET /metrics``.

The metrics live in a :class:`Metrics` of their own (a ``CollectorRegistry`` and the
metric objects), never in prometheus-client's global registry, so that tests and
several apps in one process do not collide. The running code uses :data:`METRICS`;
``collect``, ``plan``, ``Worker`` and ``create_app`` take another one where a test
needs a clean count.

Counters are **per process**. With several processes (a ``publisher run`` and extra
sending workers), each exposes its own counts from its own ``/metrics`` and Prometheus
sums them; prometheus-client's multiprocess mode (one shared directory of memory-mapped
files) is not used. The outbox gauge is the exception: it is read from the database at
scrape time, so every process reports the same, shared numbers.

Names follow the Prometheus conventions: a ``publisher_`` prefix, base units in the
name (``_seconds``, ``_bytes``), ``_total`` on counters.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

import anyio
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from publisher.store.outbox import Status, status_counts

if TYPE_CHECKING:
    from publisher.collect import SourceReport
    from publisher.delivery.planning import PlanReport
    from publisher.delivery.worker import DeliveryReport

log = logging.getLogger(__name__)

# A scrape must answer well within Prometheus's default 10 s scrape timeout, even when
# the database hangs: past this, the outbox gauge is left out of that scrape.
OUTBOX_TIMEOUT_SECONDS = 2.0
OUTBOX_METRIC = "publisher_outbox_messages"

# An SMTP transaction to a nearby MTA takes milliseconds; a slow or greylisting one,
# seconds; the transport's own timeouts cap it at about a minute.
SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A folder source takes milliseconds; a feed or a site of pages over HTTP, seconds to minutes.
COLLECT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
ITEM_KINDS = ("new", "updated", "unchanged")
QUEUED_KINDS = ("alert", "digest")
FEED_FORMATS = frozenset({"atom", "rss", "json", "opml"})

# Prometheus's text format 0.0.4, which every Prometheus version reads. (Since
# prometheus-client 0.23, CONTENT_TYPE_LATEST names format 1.0.0 instead.)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class Metrics:
    """The counters and histograms of one process, in a registry of their own."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = registry = CollectorRegistry()
        if process:  # CPU, memory, open files, GC: what every Prometheus target shows
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)  # registers nothing off CPython
        self.items_collected = Counter(
            "publisher_items_collected_total",
            "Items a collection found, per source and kind (new, updated, unchanged).",
            ["source", "kind"],
            registry=registry,
        )
        self.source_errors = Counter(
            "publisher_source_errors_total",
            "Collections of a source that ended in an error.",
            ["source"],
            registry=registry,
        )
        self.collection_duration = Histogram(
            "publisher_collection_duration_seconds",
            "How long collecting one source took, storing included.",
            ["source"],
            buckets=COLLECT_BUCKETS,
            registry=registry,
        )
        self.messages_queued = Counter(
            "publisher_messages_queued_total",
            "Messages written to the outbox, by kind (alert, digest).",
            ["kind"],
            registry=registry,
        )
        for kind in QUEUED_KINDS:  # known in advance: show them at zero from the start
            self.messages_queued.labels(kind)
        self.messages_sent = Counter(
            "publisher_messages_sent_total",
            "Messages the SMTP server accepted.",
            registry=registry,
        )
        self.messages_retried = Counter(
            "publisher_messages_retried_total",
            "Sending attempts that failed temporarily and were queued again.",
            registry=registry,
        )
        self.messages_failed = Counter(
            "publisher_messages_failed_total",
            "Messages given up on: a permanent failure, or too many temporary ones.",
            registry=registry,
        )
        self.messages_skipped = Counter(
            "publisher_messages_skipped_total",
            "Messages not sent because the recipient was suppressed or unsubscribed.",
            registry=registry,
        )
        self.send_duration = Histogram(
            "publisher_smtp_send_duration_seconds",
            "How long one SMTP transaction took, whatever its outcome.",
            buckets=SEND_BUCKETS,
            registry=registry,
        )
        self.feed_requests = Counter(
            "publisher_feed_requests_total",
            "Feed requests answered, by format and HTTP status.",
            ["format", "status"],
            registry=registry,
        )
        self.feed_response_bytes = Counter(
            "publisher_feed_response_bytes_total",
            "Bytes of feed response bodies sent (compressed size when gzipped).",
            ["format"],
            registry=registry,
        )

    def record_collection(self, report: SourceReport) -> None:
        """Count one source's collection. Every series is touched, so zeros show too."""
        counts = {"new": report.new, "updated": report.updated, "unchanged": report.unchanged}
        for kind in ITEM_KINDS:
            self.items_collected.labels(report.source, kind).inc(counts[kind])
        errors = self.source_errors.labels(report.source)
        if report.error is not None:
            errors.inc()
        self.collection_duration.labels(report.source).observe(report.seconds)

    def record_plan(self, report: PlanReport) -> None:
        """Count the messages one planning pass queued."""
        self.messages_queued.labels("alert").inc(report.alerts)
        self.messages_queued.labels("digest").inc(report.digests)

    def record_delivery(self, report: DeliveryReport) -> None:
        """Count what became of the messages a worker handled."""
        self.messages_sent.inc(report.sent)
        self.messages_retried.inc(report.retried)
        self.messages_failed.inc(report.failed)
        self.messages_skipped.inc(report.skipped)

    def record_feed_request(self, path: str, *, status: int, size: int) -> None:
        """Count one feed answer; ``path`` is the feed's path (``all.atom``, ``feeds.opml``)."""
        extension = path.rsplit(".", 1)[-1]
        fmt = extension if extension in FEED_FORMATS else "other"  # bounded label values
        self.feed_requests.labels(fmt, str(status)).inc()
        self.feed_response_bytes.labels(fmt).inc(size)


METRICS = Metrics()
"""The process's metrics, used by the running code."""


class OutboxCollector:
    """The outbox by status, as a gauge read from the store at scrape time.

    The query runs in a thread of its own that the scrape waits for at most
    ``timeout`` seconds; scrapes that come while it runs (two Prometheus servers) wait for
    the same query rather than start another, so a hung database never piles up threads.
    When the database is down or slow, the gauge is left out: the scrape still answers
    with everything else.
    """

    def __init__(self, engine: Engine, *, timeout: float = OUTBOX_TIMEOUT_SECONDS) -> None:
        self._engine = engine
        self._timeout = timeout
        self._pending: tuple[threading.Thread, list[dict[Status, int]]] | None = None
        self._lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        # Named without querying: registering the collector must not touch the database.
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        counts = self._counts()
        if counts is None:
            return []
        family = self._family()
        for status, count in counts.items():
            family.add_metric([status.value], count)
        return [family]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            OUTBOX_METRIC, "Messages in the outbox, by status, at scrape time.", labels=["status"]
        )

    def _counts(self) -> dict[Status, int] | None:
        with self._lock:
            if self._pending is None or not self._pending[0].is_alive():
                answer: list[dict[Status, int]] = []
                thread = threading.Thread(
                    target=self._query, args=(answer,), name="outbox-metrics", daemon=True
                )
                thread.start()
                self._pending = (thread, answer)
            thread, answer = self._pending
        thread.join(self._timeout)
        if thread.is_alive():
            log.warning("outbox metrics: no answer from the database in %ss", self._timeout)
            return None
        return answer[0] if answer else None

    def _query(self, answer: list[dict[Status, int]]) -> None:
        try:
            with self._engine.connect() as conn:
                answer.append(status_counts(conn))
        except SQLAlchemyError as exc:
            log.warning("outbox metrics: %s", exc)


def metrics_routes(metrics: Metrics, engine: Engine) -> list[Route]:
    """``GET /metrics``: ``metrics`` and the outbox of ``engine``, in the text format."""
    registry = CollectorRegistry()
    registry.register(metrics.registry)
    registry.register(OutboxCollector(engine))

    async def endpoint(request: Request) -> Response:
        # The outbox query may wait on the database: keep it off the event loop.
        data = await anyio.to_thread.run_sync(generate_latest, registry)
        return Response(data, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return [Route("/metrics", endpoint, methods=["GET"], name="metrics")]
