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
from publisher.delivery.planning import PlanReport, look_back, plan
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.store.outbox import prune

# How often the sender looks for rows the plan has committed since it last found none.
PLAN_POLL_SECONDS = 0.2


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be queued; send and keep nothing.")
@click.pass_obj
def send(ctx: Context, dry_run: bool) -> None:
    """Queue every alert and digest due now and deliver everything the outbox holds,
    sending the first messages while the rest are still being queued.

    Then forgets what finished before the outbox's memory (``[outbox] keep``), as the
    service does every hour. Exits 1 when a message failed for good in this run.
    """
    settings = ctx.settings
    signer_from_settings(settings.dkim)  # a missing or broken key stops us before queuing
    now = datetime.now(UTC)
    if dry_run:
        planned = plan(
            ctx.engine,
            ctx.subscriptions,
            renderer=ctx.renderer,
            settings=settings,
            now=now,
            dry_run=True,
        )
        Console().print(_table("Dry run: nothing queued or sent", planned))
        return
    planned, delivered = asyncio.run(_plan_and_deliver(ctx, now))
    pruned = prune(ctx.engine, before=look_back(settings, now))
    table = _table("Send", planned)
    for label, value in (
        ("sent", delivered.sent),
        ("to retry", delivered.retried),
        ("failed", delivered.failed),
        ("skipped (unsubscribed)", delivered.skipped),
        ("old messages forgotten", pruned.messages),
    ):
        table.add_row(label, str(value))
    Console().print(table)
    if delivered.failed:
        raise SystemExit(1)


def _table(title: str, planned: PlanReport) -> Table:
    table = Table(title=title)
    table.add_column("")
    table.add_column("messages", justify="right")
    table.add_row("alerts queued", str(planned.alerts))
    table.add_row("digests queued", str(planned.digests))
    table.add_row("new subscribers", str(planned.new_subscribers))
    return table


async def _plan_and_deliver(ctx: Context, now: datetime) -> tuple[PlanReport, DeliveryReport]:
    """Plan in a thread while sending: the plan commits its rows as it goes, so the
    first digests leave while the last are rendered."""
    settings = ctx.settings
    subscriptions, renderer = ctx.subscriptions, ctx.renderer  # read here: errors stop us
    planning = asyncio.ensure_future(
        asyncio.to_thread(
            plan, ctx.engine, subscriptions, renderer=renderer, settings=settings, now=now
        )
    )
    delivered = DeliveryReport()
    async with SmtpTransport(settings.smtp, password=settings.smtp_password) as transport:
        worker = Worker(
            ctx.engine,
            transport,
            settings=settings,
            lease=settings.outbox.lease,
            batch=settings.outbox.batch,
        )
        with progress_bar("sending") as bar:
            while True:
                planned_all = planning.done()
                delivered += await worker.run_once(progress=lambda outcome: bar.advance())
                if planned_all:  # and what it queued is sent
                    break
                await asyncio.wait({planning}, timeout=PLAN_POLL_SECONDS)
    return await planning, delivered
