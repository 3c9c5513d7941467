"""``publisher resubscribe EMAIL``: take an address off the suppression list."""

from __future__ import annotations

from datetime import UTC

import click

from publisher.cli._context import Context
from publisher.store.outbox import permanent_failures
from publisher.store.suppressions import lift


@click.command()
@click.argument("email")
@click.pass_obj
def resubscribe(ctx: Context, email: str) -> None:
    """Take EMAIL off the suppression list (unsubscribed, bounced, complained or manual).

    From the next send on it gets what its rule in subscriptions.yaml selects; items
    queued for it while it was suppressed are not sent again. Exits 1 when EMAIL was not
    suppressed. An address that is not in subscriptions.yaml is taken off all the same,
    with a warning: it gets nothing until it is added there.
    """
    with ctx.engine.begin() as conn:
        lifted = lift(conn, email)
        bounces = permanent_failures(conn, email) if lifted is not None else 0
    if lifted is None:
        raise click.ClickException(f"{email} is not on the suppression list; nothing was changed")
    since = f"{lifted.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    detail = f": {lifted.detail}" if lifted.detail else ""
    click.echo(
        f"{lifted.email} is no longer suppressed; it was {lifted.reason.value} "
        f"(by {lifted.source}, {since}){detail}."
    )
    if bounces:
        click.echo(
            f"Note: the {bounces} message(s) to it that failed for good (5xx) still count: "
            "a further permanent failure suppresses it again."
        )
    try:
        subscriptions = ctx.subscriptions
    except click.ClickException as exc:
        click.echo(f"warning: cannot tell whether it is subscribed: {exc.message}", err=True)
        return
    if subscriptions.get(email) is None:
        click.echo(
            f"warning: {email} is not in {ctx.settings.subscriptions}: "
            "it gets nothing until it is added there.",
            err=True,
        )
