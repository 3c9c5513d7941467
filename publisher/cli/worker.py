"""``publisher worker``: a sending process, one of several on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import uuid

import click
from prometheus_client import start_http_server
from rich.console import Console

from publisher.cli._context import Context
from publisher.delivery import SmtpTransport
from publisher.delivery.message import signer_from_settings
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.metrics import METRICS


@click.command()
@click.option("--once", is_flag=True, help="Exit when nothing is due instead of waiting.")
@click.option(
    "--poll",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between looks at an empty outbox.",
)
@click.option(
    "--metrics",
    "metrics_address",
    metavar="HOST:PORT",
    help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics.",
)
@click.pass_obj
def worker(ctx: Context, once: bool, poll: float, metrics_address: str | None) -> None:
    """Send from the outbox: claim due messages, send them, record each answer.

    Any number of workers (and `publisher run`s) share one PostgreSQL outbox: each
    claims its own rows (FOR UPDATE SKIP LOCKED), so none is sent twice. SIGINT or
    SIGTERM stops after the batch under way. Exits 1 when a message failed for good.
    `--metrics` serves the worker's own counters (messages by outcome, SMTP times); the
    outbox gauge comes from `publisher run`'s /metrics, once for all workers.
    """
    settings = ctx.settings
    if metrics_address is not None:
        _serve_metrics(metrics_address)
    signer_from_settings(settings.dkim)  # a missing or broken key stops us now
    password = settings.smtp_password
    engine = ctx.engine
    owner = f"{socket.gethostname()}:worker:{uuid.uuid4().hex[:8]}"

    async def work() -> DeliveryReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        total = DeliveryReport()
        async with SmtpTransport(settings.smtp, password=password) as transport:
            sender = Worker(
                engine,
                transport,
                settings=settings,
                owner=owner,
                lease=settings.outbox.lease,
                batch=settings.outbox.batch,
            )
            while not stop.is_set():
                total += await sender.run_once(stop=stop)
                if once:
                    break
                with contextlib.suppress(TimeoutError):  # nothing due: look again later
                    await asyncio.wait_for(stop.wait(), timeout=poll)
        return total

    report = asyncio.run(work())
    engine.dispose()
    Console().print(
        f"{owner}: sent {report.sent}, to retry {report.retried}, "
        f"failed {report.failed}, skipped {report.skipped}"
    )
    if report.failed:
        raise SystemExit(1)


def _serve_metrics(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{address!r}: expected HOST:PORT", param_hint="--metrics")
    try:
        # A daemon thread: it ends with the process.
        start_http_server(int(port), addr=host.strip("[]"), registry=METRICS.registry)
    except OSError as exc:
        raise click.ClickException(f"--metrics {address}: {exc.strerror or exc}") from exc
