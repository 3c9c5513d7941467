"""``publisher retry [--failed]``: put messages back in line; the next send delivers them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from publisher.admin import RetryReport, retry
from publisher.cli._context import Context
from publisher.store.suppressions import Reason

DELIVER_HINT = "Nothing was sent: run `publisher send` (or let `publisher run`) deliver them."


@click.command(name="retry")
@click.option(
    "--failed",
    is_flag=True,
    help="Also queue the messages that failed for good again, their attempts reset "
    "(not those to suppressed addresses, nor to addresses no longer in subscriptions.yaml).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on standard output.")
@click.pass_obj
def retry_command(ctx: Context, failed: bool, as_json: bool) -> None:
    """Make every queued message that waits for its backoff due now.

    This command only queues: run `publisher send` (or let `publisher run`) deliver
    them. Exits 0.
    """
    subscribed = {s.email.lower() for s in ctx.subscriptions.subscribers} if failed else None
    with ctx.engine.begin() as conn:
        report = retry(conn, now=datetime.now(UTC), subscribed=subscribed)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "made_due": report.made_due,
                    "requeued": report.requeued,
                    "left": {
                        "suppressed": {
                            reason.value: report.left_suppressed.get(reason.value, 0)
                            for reason in Reason
                        },
                        "not_subscribed": report.left_unsubscribed,
                    },
                },
                indent=2,
            )
        )
        return
    for line in _describe(report):
        click.echo(line)


def _describe(report: RetryReport) -> list[str]:
    lines = [f"{report.made_due} queued message(s) waiting for their backoff: now due."]
    if report.failed_included:
        lines.append(f"{report.requeued} failed message(s) queued again, their attempts reset.")
        if report.left_suppressed:
            reasons = ", ".join(
                f"{reason} {count}" for reason, count in sorted(report.left_suppressed.items())
            )
            count = sum(report.left_suppressed.values())
            lines.append(
                f"{count} failed message(s) left: their address is suppressed ({reasons}); "
                "`publisher resubscribe EMAIL` lifts a suppression."
            )
        if report.left_unsubscribed:
            lines.append(
                f"{report.left_unsubscribed} failed message(s) left: "
                "their address is no longer in subscriptions.yaml."
            )
    lines.append(DELIVER_HINT)
    return lines
