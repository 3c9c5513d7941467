"""The metrics the running code records, and the JSON log lines, against real parts: the
sample content collected into the store, messages planned from it, sends to aiosmtpd."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from publisher.collect import collect
from publisher.delivery import SmtpTransport
from publisher.delivery.message import MessageTemplate, make_message_id
from publisher.delivery.planning import plan
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.logs import TEXT_FORMAT, JsonFormatter
from publisher.metrics import Metrics, OutboxCollector
from publisher.rendering.emails import UNSUBSCRIBE_URL_MARK, EmailRenderer, RenderedEmail
from publisher.settings import Settings, load_settings
from publisher.store.outbox import NewMessage, enqueue
from publisher.store.suppressions import Reason, suppress
from publisher.subscriptions import parse_subscriptions
from publisher.taxonomy import load_taxonomy
from tests.delivery.conftest import HOST, Handler, MailServer, _Controller

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)  # 08:00 in Tashkent
SUBSCRIPTIONS = """\
defaults:
  timezone: Asia/Tashkent
  send_at: "08:00"
subscribers:
  - email: analyst@example.org
    fields_of_work: [policing]
    frequency: immediate
  - email: desk@example.org
    frequency: daily
"""


def _settings(tmp_path: Path, engine: Engine, *, broken_feed: bool = False) -> Settings:
    """The sample content as a folder source; with a feed source that cannot be reached."""
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    text = (
        f'database_url = "{engine.url.render_as_string(hide_password=False)}"\n'
        '[sender]\nfrom = "OSCE News <news@example.org>"\n'
        '[http]\nretries = 0\ntimeout = "2s"\n'
        f'[[sources]]\nname = "newsroom"\nkind = "folder"\npath = "{content}"\n'
    )
    if broken_feed:
        # Port 9 (discard) is closed on loopback: the connection is refused at once.
        text += '[[sources]]\nname = "wire"\nkind = "feed"\nurl = "http://127.0.0.1:9/rss"\n'
    path = tmp_path / "publisher.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={})


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def test_collection_counters_equal_the_reports(tmp_path: Path, engine: Engine) -> None:
    """Item counters per source and kind sum the reports; a failure counts; each pass is timed."""
    settings = _settings(tmp_path, engine, broken_feed=True)
    metrics = Metrics(process=False)
    taxonomy = load_taxonomy()
    first = {
        r.source: r
        for r in asyncio.run(collect(settings, engine, taxonomy=taxonomy, metrics=metrics))
    }
    assert first["newsroom"].new >= 14
    items = "publisher_items_collected_total"
    assert _value(metrics, items, source="newsroom", kind="new") == first["newsroom"].new
    assert _value(metrics, items, source="newsroom", kind="unchanged") == 0

    [second] = asyncio.run(
        collect(settings, engine, taxonomy=taxonomy, only=["newsroom"], metrics=metrics)
    )
    assert second.unchanged == first["newsroom"].new
    assert _value(metrics, items, source="newsroom", kind="new") == first["newsroom"].new
    assert _value(metrics, items, source="newsroom", kind="unchanged") == second.unchanged
    assert _value(metrics, items, source="newsroom", kind="updated") == 0
    assert _value(metrics, items, source="wire", kind="new") == 0

    errors = "publisher_source_errors_total"
    assert first["wire"].error is not None
    assert _value(metrics, errors, source="wire") == 1
    assert _value(metrics, errors, source="newsroom") == 0
    duration = "publisher_collection_duration_seconds"
    assert _value(metrics, f"{duration}_count", source="newsroom") == 2
    assert _value(metrics, f"{duration}_count", source="wire") == 1
    took = first["newsroom"].seconds + second.seconds
    assert _value(metrics, f"{duration}_sum", source="newsroom") == pytest.approx(took)


def test_planning_counts_what_it_queued_and_a_dry_run_nothing(
    tmp_path: Path, engine: Engine
) -> None:
    """Queued alerts and digests are counted as the plan reports them; a dry run counts none."""
    settings = _settings(tmp_path, engine)
    taxonomy = load_taxonomy()
    subscriptions = parse_subscriptions(
        SUBSCRIPTIONS, path="subscriptions.yaml", taxonomy=taxonomy, locales=["en"]
    )
    renderer = EmailRenderer(
        taxonomy=taxonomy, base_url=settings.base_url, organisation="OSCE News"
    )
    metrics = Metrics(process=False)

    def run(now: datetime, *, dry_run: bool = False) -> tuple[int, int]:
        report = plan(
            engine,
            subscriptions,
            renderer=renderer,
            settings=settings,
            now=now,
            dry_run=dry_run,
            metrics=metrics,
        )
        return report.alerts, report.digests

    run(T0 - timedelta(days=1))  # the subscribers appear before the items
    asyncio.run(collect(settings, engine, taxonomy=taxonomy, clock=lambda: T0))
    dry_alerts, _ = run(T0, dry_run=True)
    assert dry_alerts > 0
    assert _value(metrics, "publisher_messages_queued_total", kind="alert") == 0
    alerts, digests = run(T0)
    assert (alerts, digests) == (dry_alerts, 1)
    assert _value(metrics, "publisher_messages_queued_total", kind="alert") == alerts
    assert _value(metrics, "publisher_messages_queued_total", kind="digest") == 1


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A plain aiosmtpd server on 127.0.0.1, port 0 (tests/delivery/conftest.py's)."""
    handler = Handler()
    controller = _Controller(handler, hostname=HOST, port=0, server_hostname="mx.test")
    controller.start()
    yield MailServer(controller.port, handler)
    controller.stop()


def _queue(engine: Engine, recipients: list[str]) -> None:
    rendered = RenderedEmail(
        subject="Новости",
        html=f"<p>Привет</p><a href='{UNSUBSCRIBE_URL_MARK}'>x</a>",
        text=f"Привет\nОтписаться: {UNSUBSCRIBE_URL_MARK}\n",
        locale="ru",
    )
    body = MessageTemplate.build(
        rendered,
        sender="OSCE News <news@example.org>",
        reply_to=None,
        list_id="news",
        list_name="OSCE News",
        domain="example.org",
        date=T0,
    ).to_bytes()
    key = "alert:item-1"
    messages = [
        NewMessage(r, key, ("item-1",), make_message_id(key=f"{key}/{r}", domain="example.org"))
        for r in recipients
    ]
    with engine.begin() as conn:
        enqueue(conn, body, messages, now=T0)


def test_sends_count_each_outcome_and_time_each_smtp_transaction(
    engine: Engine, mail_server: MailServer
) -> None:
    """Each delivery outcome counts as the worker reports it; each SMTP transaction is timed."""
    # Four outcomes in different numbers, so that no two counters can be confused.
    sent = [f"ok{i}@example.net" for i in range(4)]
    slow = [f"slow{i}@example.net" for i in range(3)]
    bad = [f"bad{i}@example.net" for i in range(2)]
    _queue(engine, [*sent, *slow, *bad, "gone@example.net"])
    for address in slow:
        mail_server.handler.refuse[address] = "451 4.7.1 Greylisted"
    for address in bad:
        mail_server.handler.refuse[address] = "550 5.1.1 No such user"
    with engine.begin() as conn:
        suppress(conn, "gone@example.net", reason=Reason.UNSUBSCRIBED, now=T0, source="web")
    settings = Settings(
        base_url="https://news.example.org",
        secret_key="test-secret",
        sender={"from": "OSCE News <news@example.org>"},
    )
    metrics = Metrics(process=False)

    async def send() -> DeliveryReport:
        async with SmtpTransport(mail_server.settings(connections=2)) as transport:
            worker = Worker(engine, transport, settings=settings, clock=lambda: T0, metrics=metrics)
            return await worker.run_once()

    report = asyncio.run(send())
    assert report == DeliveryReport(sent=4, retried=3, failed=2, skipped=1)
    for outcome in ("sent", "retried", "failed", "skipped"):
        expected = getattr(report, outcome)
        assert _value(metrics, f"publisher_messages_{outcome}_total") == expected, outcome
    latency = "publisher_smtp_send_duration_seconds"
    assert _value(metrics, f"{latency}_count") == 9  # the suppressed address is never tried
    assert _value(metrics, f"{latency}_sum") > 0
    assert _value(metrics, f"{latency}_bucket", le="+Inf") == 9


def test_two_metrics_in_one_process_keep_their_own_counts() -> None:
    """Two Metrics in one process neither collide on registration nor share counts."""
    first, second = Metrics(), Metrics()
    first.messages_sent.inc(3)
    assert _value(first, "publisher_messages_sent_total") == 3
    assert _value(second, "publisher_messages_sent_total") == 0


def test_a_hung_database_leaves_the_outbox_gauge_out_in_time() -> None:
    """A hung database costs a scrape its timeout only, and no second query is started."""
    release = threading.Event()

    def hang() -> sqlite3.Connection:
        release.wait(30)
        return sqlite3.connect(":memory:")  # no outbox table: the late query then fails

    engine = create_engine("sqlite://", creator=hang)
    collector = OutboxCollector(engine, timeout=0.2)
    try:
        began = time.monotonic()
        assert list(collector.collect()) == []
        assert list(collector.collect()) == []
        assert time.monotonic() - began < 2
        waiting = [t for t in threading.enumerate() if t.name == "outbox-metrics"]
        assert len(waiting) == 1
    finally:
        release.set()
        for thread in threading.enumerate():
            if thread.name == "outbox-metrics":
                thread.join(5)
        engine.dispose()


def _json_lines(record: logging.LogRecord) -> list[str]:
    return JsonFormatter().format(record).splitlines()


def test_a_json_log_line_carries_the_extra_fields() -> None:
    """A record with context extras is one JSON line with those keys and no other extras."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("publisher.test_metrics")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning(
            "%s to %s: %s",
            "<m1@example.org>",
            "анна@example.org",
            "451 greylisted\nsecond line",
            extra={
                "source": "newsroom",
                "recipient": "анна@example.org",
                "message_id": "<m1@example.org>",
                "item_id": "2024-12-06-tashkent-workshop",
                "password": "not for the logs",
            },
        )
    finally:
        log.removeHandler(handler)
        log.propagate = True
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry == {
        "time": entry["time"],
        "level": "WARNING",
        "logger": "publisher.test_metrics",
        "message": "<m1@example.org> to анна@example.org: 451 greylisted\nsecond line",
        "source": "newsroom",
        "recipient": "анна@example.org",
        "message_id": "<m1@example.org>",
        "item_id": "2024-12-06-tashkent-workshop",
    }
    assert datetime.fromisoformat(entry["time"]).utcoffset() == timedelta(0)


def test_a_json_log_line_holds_the_traceback_on_its_one_line() -> None:
    """An exception logged with its traceback is still one line, the traceback a field."""
    try:
        raise ValueError("broken front matter")
    except ValueError:
        record = logging.LogRecord(
            "publisher.collect", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    [line] = _json_lines(record)
    entry = json.loads(line)
    assert entry["message"] == "failed"
    assert "ValueError: broken front matter" in entry["exception"]


def _collect_command(tmp_path: Path, *options: str, **environ: str) -> list[str]:
    """``publisher [options] collect`` in a process of its own: its stderr lines."""
    content = tmp_path / "content"
    content.mkdir(exist_ok=True)
    config = tmp_path / "publisher.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "publisher.db"}"\n'
        '[http]\nretries = 0\ntimeout = "2s"\n'
        '[[sources]]\nname = "wire"\nkind = "feed"\nurl = "http://127.0.0.1:9/rss"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    result = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(config), *options, "collect"],
        env=env | environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # the source failed
    return result.stderr.splitlines()


@pytest.mark.parametrize(
    ("options", "environ"),
    [(("--log-format", "json"), {}), ((), {"PUBLISHER_LOG_FORMAT": "json"})],
    ids=["option", "environment"],
)
def test_the_command_logs_json_lines_when_asked(
    tmp_path: Path, options: tuple[str, ...], environ: dict[str, str]
) -> None:
    """With --log-format json or PUBLISHER_LOG_FORMAT=json a source's failure is a JSON line."""
    lines = _collect_command(tmp_path, *options, **environ)
    records = [json.loads(line) for line in lines if line.startswith("{")]
    [failure] = [r for r in records if r.get("source") == "wire"]
    assert failure["level"] == "ERROR"
    assert failure["logger"] == "publisher.collect"
    assert "127.0.0.1:9" in failure["message"]


def test_the_command_logs_text_lines_by_default(tmp_path: Path) -> None:
    """Without the option the log keeps its human format and no line is JSON."""
    lines = _collect_command(tmp_path)
    assert not [line for line in lines if line.startswith("{")]
    assert TEXT_FORMAT == "%(levelname)s %(name)s: %(message)s"
    assert [line for line in lines if line.startswith("ERROR publisher.collect: wire:")], lines
