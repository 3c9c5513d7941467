"""``publisher send [--dry-run]``: queue what is due now and deliver the outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from publisher.cli._context import Context
from publisher.cli._progress import progress_bar
from publisher.delivery import SmtpTransport
from publisher.delivery.message import signer_from_settings
from publisher.delivery.planning import plan
from publisher.delivery.worker import DeliveryReport, Worker


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be queued; send and keep nothing.")
@click.pass_obj
def send(ctx: Context, dry_run: bool) -> None:
    """Queue every alert and digest due now, then deliver everything the outbox holds.

    Exits 1 when a message failed for good in this run.
    """
    settings = ctx.settings
    signer_from_settings(settings.dkim)  # a missing or broken key stops us before queuing
    now = datetime.now(UTC)
    planned = plan(
        ctx.engine,
        ctx.subscriptions,
        renderer=ctx.renderer,
        settings=settings,
        now=now,
        dry_run=dry_run,
    )
    table = Table(title="Dry run: nothing queued or sent" if dry_run else "Send")
    table.add_column("")
    table.add_column("messages", justify="right")
    table.add_row("alerts queued", str(planned.alerts))
    table.add_row("digests queued", str(planned.digests))
    table.add_row("new subscribers", str(planned.new_subscribers))
    if dry_run:
        Console().print(table)
        return
    delivered = asyncio.run(_deliver(ctx))
    for label, value in (
        ("sent", delivered.sent),
        ("to retry", delivered.retried),
        ("failed", delivered.failed),
        ("skipped (unsubscribed)", delivered.skipped),
    ):
        table.add_row(label, str(value))
    Console().print(table)
    if delivered.failed:
        raise SystemExit(1)


async def _deliver(ctx: Context) -> DeliveryReport:
    settings = ctx.settings
    async with SmtpTransport(settings.smtp, password=settings.smtp_password) as transport:
        worker = Worker(
            ctx.engine,
            transport,
            settings=settings,
            lease=settings.outbox.lease,
            batch=settings.outbox.batch,
        )
        with progress_bar("sending") as bar:
            return await worker.run_once(progress=lambda outcome: bar.advance())
