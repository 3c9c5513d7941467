"""Sending: our Worker against Postfix's ``smtp-source``, into the same ``smtp-sink``.

Both send K messages of the fan-out's median size over C connections kept open
(``smtp-source -d``: the worker reuses its connections too) to an ``smtp-sink`` on a
loopback port, which accepts every message and throws it away. Neither pipelines
(aiosmtplib has no PIPELINING; ``smtp-source`` does not use it either). Our side starts
from an outbox holding the K messages (one shared body, as a digest is stored) and does
all a real pass does: claim batches, check suppressions, personalize, send, record the
answers in the store (SQLite here). The two take turns, ``--repeat`` times each, and
the best run of each is compared: this machine's speed drifts by 2-3x over minutes.

Beside the rates, the CPU time each side spends per message (user + system, from
``getrusage``): on a machine shared with other work the rates move with the load, the
CPU a message costs much less.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Context, Figures, timed

from publisher.delivery.message import make_message_id
from publisher.delivery.smtp import SmtpTransport
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.store.database import open_store
from publisher.store.outbox import NewMessage, enqueue, save_segments

INSTALL = (
    "echo 'postfix postfix/main_mailer_type select No configuration' | sudo "
    "debconf-set-selections && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "
    "postfix (Debian/Ubuntu: only its test programs smtp-sink and smtp-source are used; "
    "Postfix itself is left unconfigured and need not run)"
)
SENDER = "news@example.org"
DEDUPE_KEY = "daily:2025-03-04"


def measure_smtp(context: Context) -> Figures:
    """Messages a second through our Worker and through smtp-source, per connection count."""
    sink, source = program("smtp-sink"), program("smtp-source")
    if sink is None or source is None:
        missing = "smtp-sink" if sink is None else "smtp-source"
        context.note(f"{missing} not found: the SMTP figures are skipped. Install: {INSTALL}")
        return {}
    shared = context.shared["fanout"]
    body: bytes = shared["body"]
    segments: dict[bytes, bytes] = shared["segments"]
    message: bytes = shared["message"]
    # smtp-source -F reads lines and ends each with CRLF itself.
    message_file = context.directory / "smtp-source-message.eml"
    message_file.write_bytes(message.replace(b"\r\n", b"\n"))
    count = context.smtp_messages
    figures: Figures = {"smtp_messages": count, "smtp_message_kb": round(len(message) / 1024, 1)}
    for number, connections in enumerate(context.smtp_connections):
        # Turn about, best of --repeat for each: the machine's speed drifts over minutes.
        our_runs, their_runs = [], []
        for attempt in range(context.repeat):
            with smtp_sink(sink) as ours_sink:
                our_runs.append(
                    _send_with_worker(
                        context,
                        body,
                        segments,
                        port=ours_sink.port,
                        connections=connections,
                        attempt=attempt,
                    )
                )
            with smtp_sink(sink) as their_sink:
                their_runs.append(
                    _send_with_smtp_source(
                        source, message_file, their_sink.port, connections, count
                    )
                )
            for who, done in (("the worker", ours_sink), ("smtp-source", their_sink)):
                if done.received != count:
                    raise RuntimeError(
                        f"smtp-sink took {done.received} of {who}'s {count} messages"
                    )
        (ours, our_cpu), (theirs, their_cpu) = min(our_runs), min(their_runs)
        rates = {
            f"smtp_msgs_per_s_c{connections}": round(count / ours),
            f"smtp_source_msgs_per_s_c{connections}": round(count / theirs),
            f"smtp_vs_smtp_source_c{connections}": round(theirs / ours, 2),
            f"smtp_worker_cpu_us_per_msg_c{connections}": round(our_cpu / count * 1e6),
            f"smtp_source_cpu_us_per_msg_c{connections}": round(their_cpu / count * 1e6),
        }
        if number == 0:  # the first count asked for is the headline (4: the default)
            figures["smtp_connections"] = connections
            figures["smtp_msgs_per_s"] = round(count / ours)
            figures["smtp_source_msgs_per_s"] = round(count / theirs)
            figures["smtp_vs_smtp_source"] = round(theirs / ours, 2)
        figures.update(rates)
    return figures


def program(name: str) -> str | None:
    """Postfix puts its test programs in /usr/sbin, which a user's PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


@dataclass
class _Sink:
    port: int
    received: int = 0  # messages it took, read from its counters when it stops


@contextmanager
def smtp_sink(program: str) -> Iterator[_Sink]:
    """An smtp-sink on a free loopback port, accepting every message and dropping it."""
    sink = _Sink(free_port())
    command = [program, "-c"]  # -c: a counter line per message, "... mesg=N"
    if os.geteuid() == 0:
        command += ["-u", "nobody"]  # required as root: it drops to this user
    command += [f"127.0.0.1:{sink.port}", "1000"]
    with tempfile.TemporaryFile() as output:  # a file, never a pipe nobody reads
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_for_port(sink.port, process)
            yield sink
        finally:
            process.terminate()
            process.wait(timeout=10)
            output.seek(0)
            found = re.findall(rb"mesg=(\d+)", output.read())
            sink.received = int(found[-1]) if found else 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"smtp-sink exited at start with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"smtp-sink is not listening on 127.0.0.1:{port} after 10 s")


def _send_with_worker(
    context: Context,
    body: bytes,
    segments: dict[bytes, bytes],
    *,
    port: int,
    connections: int,
    attempt: int = 0,
) -> tuple[float, float]:
    """Seconds for ``Worker.run_once`` to send the whole pre-filled outbox, and the CPU
    seconds this process spent on it."""
    directory = context.directory / f"smtp-c{connections}-{attempt}"
    directory.mkdir()
    settings = context.settings(
        database_url=f"sqlite:///{directory / 'publisher.db'}",
        smtp={"host": "127.0.0.1", "port": port, "connections": connections},
    )
    engine = open_store(settings.database_url)
    queued_at = datetime.now(UTC) - timedelta(minutes=1)
    recipients = [f"reader{i}@example.net" for i in range(context.smtp_messages)]
    with engine.begin() as conn:
        save_segments(conn, segments, now=queued_at)
        enqueue(
            conn,
            body,
            [
                NewMessage(
                    recipient=address,
                    dedupe_key=DEDUPE_KEY,
                    item_ids=(),
                    message_id=make_message_id(key=f"{DEDUPE_KEY}/{address}", domain="example.org"),
                )
                for address in recipients
            ],
            now=queued_at,
        )

    async def send() -> DeliveryReport:
        # As `publisher send` does (publisher/cli/send.py).
        async with SmtpTransport(settings.smtp) as transport:
            worker = Worker(
                engine,
                transport,
                settings=settings,
                lease=settings.outbox.lease,
                batch=settings.outbox.batch,
            )
            return await worker.run_once()

    before = _cpu(resource.RUSAGE_SELF)
    with timed(context, f"smtp_worker_c{connections}") as sending:
        report = asyncio.run(send())
    cpu = _cpu(resource.RUSAGE_SELF) - before
    engine.dispose()
    if report.sent != context.smtp_messages:
        raise RuntimeError(f"the worker sent {report.sent} of {context.smtp_messages}: {report}")
    return sending.seconds, cpu


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _send_with_smtp_source(
    program: str, message_file: Path, port: int, connections: int, count: int
) -> tuple[float, float]:
    """Seconds for smtp-source to send ``count`` copies of the file over ``connections``,
    and its CPU seconds (the sink, still running, is not counted)."""
    command = [
        program,
        "-d",  # keep each connection for the next message, as our transport does
        "-s", str(connections),
        "-m", str(count),
        "-F", str(message_file),
        "-f", SENDER,
        "-t", "reader@example.net",
        f"127.0.0.1:{port}",
    ]  # fmt: skip
    before = _cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    cpu = _cpu(resource.RUSAGE_CHILDREN) - before
    if done.returncode != 0:
        print(done.stderr.decode(errors="replace"), file=sys.stderr)
        raise RuntimeError(f"smtp-source exited with status {done.returncode}")
    return seconds, cpu
