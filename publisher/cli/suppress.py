"""``publisher suppress EMAIL``: stop mailing an address now, whatever its rule says."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from publisher.cli._context import Context
from publisher.store.suppressions import Reason, Source, suppress, suppressions_of

# What an administrator records by hand; bounces and one-click unsubscribes record
# themselves.
_REASONS = [Reason.MANUAL.value, Reason.COMPLAINED.value, Reason.UNSUBSCRIBED.value]


@click.command("suppress")
@click.argument("email")
@click.option(
    "--reason",
    type=click.Choice(_REASONS),
    default=Reason.MANUAL.value,
    show_default=True,
    help="complained: a spam complaint; unsubscribed: asked by letter, phone or in person.",
)
@click.option("--detail", help="A note kept with the entry (a ticket number, who asked).")
@click.pass_obj
def suppress_command(ctx: Context, email: str, reason: str, detail: str | None) -> None:
    """Put EMAIL on the suppression list: nothing more is sent to it, queued messages
    included, until `publisher resubscribe EMAIL`. Exits 1 when it is already on it.
    """
    with ctx.engine.begin() as conn:
        added = suppress(
            conn, email, reason=reason, now=datetime.now(UTC), source=Source.ADMIN, detail=detail
        )
        existing = None if added else next(iter(suppressions_of(conn, [email]).values()), None)
    if existing is not None:
        since = f"{existing.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        raise click.ClickException(
            f"{existing.email} is already suppressed ({existing.reason.value}, by "
            f"{existing.source}, {since}); nothing was changed"
        )
    click.echo(f"{email} is suppressed ({reason}): nothing more is sent to it.")
