"""GET /metrics: the Prometheus text format, from the app's own registry, with the outbox
read from the store at scrape time."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from starlette.testclient import TestClient

from publisher.collect import collect
from publisher.metrics import Metrics
from publisher.settings import Settings
from publisher.store.outbox import (
    NewMessage,
    claim,
    enqueue,
    mark_sent,
    mark_skipped,
    status_counts,
)
from publisher.taxonomy import load_taxonomy
from publisher.web import create_app
from tests.web.conftest import NOW

REPO = Path(__file__).resolve().parents[2]
IDENTITY = {"Accept-Encoding": "identity"}
FAMILIES = {
    "publisher_items_collected",
    "publisher_source_errors",
    "publisher_collection_duration_seconds",
    "publisher_messages_queued",
    "publisher_messages_sent",
    "publisher_messages_retried",
    "publisher_messages_failed",
    "publisher_messages_skipped",
    "publisher_smtp_send_duration_seconds",
    "publisher_feed_requests",
    "publisher_feed_response_bytes",
    "publisher_outbox_messages",
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(client: TestClient) -> tuple[set[str], Samples]:
    """The families named in a /metrics answer, and every sample's value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    families = list(text_string_to_metric_families(response.text))
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }
    return {family.name for family in families}, samples


@pytest.fixture
def metrics() -> Metrics:
    """Counts of this test only."""
    return Metrics(process=False)


@pytest.fixture
def app_client(settings: Settings, engine: Engine, metrics: Metrics) -> Iterator[TestClient]:
    """The web app over the store, counting into ``metrics``."""
    app = create_app(settings, engine, clock=lambda: NOW, metrics=metrics)
    with TestClient(app, base_url="https://news.example.org") as client:
        yield client


def test_metrics_answers_the_text_format_with_every_family(app_client: TestClient) -> None:
    """200, Prometheus text format 0.0.4, not cached, and every publisher family parses."""
    response = app_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    names, _ = _scrape(app_client)
    assert names >= FAMILIES


def test_the_default_metrics_serve_several_apps_in_one_process(
    settings: Settings, engine: Engine
) -> None:
    """Two apps on the default metrics both answer /metrics, process collectors included."""
    for _ in range(2):
        with TestClient(create_app(settings, engine)) as client:
            names, _ = _scrape(client)
        assert names >= FAMILIES | {"process_cpu_seconds"}


def test_items_counters_equal_the_collection_report(
    tmp_path: Path, engine: Engine, metrics: Metrics, app_client: TestClient
) -> None:
    """After collecting the sample content, the scrape's items counters are the report's."""
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    newsroom = Settings(sources=[{"name": "newsroom", "kind": "folder", "path": str(content)}])
    [report] = asyncio.run(collect(newsroom, engine, taxonomy=load_taxonomy(), metrics=metrics))
    assert report.ok and report.new >= 14
    _, samples = _scrape(app_client)
    for kind, count in (("new", report.new), ("updated", 0), ("unchanged", 0)):
        labels = frozenset({("source", "newsroom"), ("kind", kind)})
        assert samples[("publisher_items_collected_total", labels)] == count, kind
    errors = ("publisher_source_errors_total", frozenset({("source", "newsroom")}))
    assert samples[errors] == 0


def test_feed_answers_are_counted_by_format_and_status(app_client: TestClient) -> None:
    """200, 304 and 404 answers count apart; bytes are the bodies sent (none for a HEAD)."""
    url = "/feeds/en/all.atom"
    first = app_client.get(url, headers=IDENTITY)
    assert first.status_code == 200
    again = app_client.get(url, headers={**IDENTITY, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert app_client.head(url, headers=IDENTITY).status_code == 200
    assert app_client.get("/feeds/en/all.xml").status_code == 404
    _, samples = _scrape(app_client)

    def requests(fmt: str, status: str) -> float:
        key = ("publisher_feed_requests_total", frozenset({("format", fmt), ("status", status)}))
        return samples.get(key, 0.0)

    assert (requests("atom", "200"), requests("atom", "304")) == (2, 1)
    assert requests("other", "404") == 1
    sent = ("publisher_feed_response_bytes_total", frozenset({("format", "atom")}))
    assert samples[sent] == len(first.content)


def test_the_outbox_gauge_matches_status_counts(engine: Engine, app_client: TestClient) -> None:
    """The outbox gauge holds what status_counts returns, zeros included."""
    messages = [
        NewMessage(f"r{i}@example.net", "alert:a", ("a",), f"<m{i}@example.org>") for i in range(4)
    ]
    with engine.begin() as conn:
        enqueue(conn, b"Subject: x\r\n\r\nbody\r\n", messages, now=NOW)
        claimed = claim(conn, owner="test", limit=3, lease=timedelta(minutes=5), now=NOW)
        mark_sent(conn, claimed[0].id, now=NOW)
        mark_skipped(conn, claimed[1].id, owner="test", reason="suppressed", now=NOW)
    with engine.connect() as conn:
        expected = {status.value: count for status, count in status_counts(conn).items()}
    assert expected == {"queued": 1, "sending": 1, "sent": 1, "failed": 0, "skipped": 1}
    _, samples = _scrape(app_client)
    gauge = {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "publisher_outbox_messages"
    }
    assert gauge == expected


def test_a_scrape_with_the_database_down_answers_without_the_outbox(
    settings: Settings, broken_engine: Engine, metrics: Metrics
) -> None:
    """A store that cannot be opened: 200 with every other family, no outbox gauge."""
    app = create_app(settings, broken_engine, metrics=metrics)
    with TestClient(app) as client:
        names, _ = _scrape(client)
    assert "publisher_outbox_messages" not in names
    assert names >= FAMILIES - {"publisher_outbox_messages"}
