"""Scale-out: 1, 2 and 3 ``publisher worker`` processes on one PostgreSQL outbox.

Each run starts from an outbox holding the same K messages (the fan-out's median body,
one shared body as a digest is stored), starts an ``smtp-sink`` and N ``publisher worker
--once`` processes as an operator would (``python -m publisher --config … worker``), and
times them until the last exits. The sink's counter must equal K and the outbox must
hold K sent rows: nothing lost, nothing twice.

It needs a PostgreSQL database it may empty: ``--workers-database-url`` (or
``PUBLISHER_BENCH_DATABASE_URL``). Its outbox, bodies, sent items and suppressions are
deleted before each run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from harness import Context, Figures
from sending import INSTALL, program, smtp_sink
from sqlalchemy import Engine, delete

from publisher.delivery.message import make_message_id
from publisher.store.database import open_store
from publisher.store.outbox import (
    NewMessage,
    Status,
    enqueue_many,
    save_segments,
    status_counts,
)
from publisher.store.schema import bodies, outbox, sent_items, suppressions
from publisher.store.schema import segments as segments_table

DEDUPE_KEY = "daily:2025-03-04"
WORKER_COUNTS = (1, 2, 3)


def measure_workers(context: Context) -> Figures:
    """Messages a second with 1, 2 and 3 worker processes sharing one outbox."""
    url = context.workers_database_url or os.environ.get("PUBLISHER_BENCH_DATABASE_URL")
    if not url:
        context.note(
            "no PostgreSQL database for the workers step (--workers-database-url or "
            "PUBLISHER_BENCH_DATABASE_URL): its figures are skipped"
        )
        return {}
    sink_program = program("smtp-sink")
    if sink_program is None:
        context.note(f"smtp-sink not found: the workers step is skipped. Install: {INSTALL}")
        return {}
    body: bytes = context.shared["fanout"]["body"]
    segments: dict[bytes, bytes] = context.shared["fanout"]["segments"]
    count = context.smtp_messages
    connections = context.smtp_connections[0]
    figures: Figures = {"workers_messages": count, "workers_connections_each": connections}
    engine = open_store(url)
    try:
        for workers in WORKER_COUNTS:
            refill_outbox(engine, body, count, segments=segments)
            with smtp_sink(sink_program) as sink:
                seconds = _run_workers(context, url, sink.port, workers, connections)
            with engine.connect() as conn:
                sent = status_counts(conn)[Status.SENT]
            if sink.received != count or sent != count:
                raise RuntimeError(
                    f"{workers} worker(s): smtp-sink took {sink.received} messages and the "
                    f"outbox marked {sent} sent, of {count}"
                )
            figures[f"workers_msgs_per_s_w{workers}"] = round(count / seconds)
    finally:
        engine.dispose()
    return figures


def refill_outbox(
    engine: Engine, body: bytes, count: int, *, segments: Mapping[bytes, bytes] | None = None
) -> None:
    """An outbox of ``count`` messages sharing ``body`` (which shows ``segments``), due
    now, and nothing else."""
    queued_at = datetime.now(UTC) - timedelta(minutes=1)
    with engine.begin() as conn:
        for table in (sent_items, outbox, bodies, segments_table, suppressions):
            conn.execute(delete(table))
        messages = [
            NewMessage(
                recipient=f"reader{i}@example.net",
                dedupe_key=DEDUPE_KEY,
                item_ids=(),
                message_id=make_message_id(key=f"bench/{i}", domain="example.org"),
            )
            for i in range(count)
        ]
        save_segments(conn, segments or {}, now=queued_at)
        enqueue_many(conn, [(body, messages)], now=queued_at)


def _run_workers(context: Context, url: str, port: int, workers: int, connections: int) -> float:
    directory = context.directory / f"workers-{workers}"
    directory.mkdir()
    (directory / "subscriptions.yaml").write_text("subscribers: []\n", encoding="utf-8")
    config = directory / "publisher.toml"
    config.write_text(
        f'database_url = "{url}"\n'
        'secret_key = "benchmark-key"\n'
        '[sender]\nfrom = "OSCE News <news@example.org>"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nconnections = {connections}\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    command = [sys.executable, "-m", "publisher", "--config", str(config), "worker", "--once"]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            command, cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(workers)
    ]
    errors = [process.communicate(timeout=1800)[1] for process in processes]
    seconds = time.perf_counter() - started
    failed = [
        error.decode(errors="replace")
        for process, error in zip(processes, errors, strict=True)
        if process.returncode
    ]
    if failed:
        raise RuntimeError(f"{len(failed)} of {workers} worker(s) failed:\n" + "\n".join(failed))
    return seconds
