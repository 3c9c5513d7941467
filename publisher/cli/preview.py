"""``publisher preview EMAIL``: the subscriber's next message, and why each item is in it."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parseaddr
from zoneinfo import ZoneInfo

import click

from publisher.cli._context import Context
from publisher.delivery.message import MessageTemplate, make_message_id
from publisher.preview import describe, preview
from publisher.unsubscribe import make_token, unsubscribe_url


@click.command(name="preview")
@click.argument("email")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "html", "eml"]),
    default="text",
    show_default=True,
    help="What to print on standard output.",
)
@click.option(
    "--at",
    "at_text",
    metavar="DATETIME",
    help="Preview as of this ISO 8601 time (default: now; no offset: the subscriber's time zone).",
)
@click.pass_obj
def preview_command(ctx: Context, email: str, output: str, at_text: str | None) -> None:
    """Print EMAIL's next message; the reasons go to standard error. Nothing is queued."""
    subscriber = ctx.subscriptions.get(email)
    if subscriber is None:
        raise click.ClickException(f"{email} is not in {ctx.settings.subscriptions}")
    at = datetime.now(UTC)
    if at_text is not None:
        try:
            at = datetime.fromisoformat(at_text)
        except ValueError as exc:
            raise click.BadParameter(
                f"{at_text!r} is not an ISO 8601 date-time", param_hint="--at"
            ) from exc
        if at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo(subscriber.rule.timezone))
    settings = ctx.settings
    result = preview(ctx.engine, subscriber, renderer=ctx.renderer, settings=settings, at=at)
    rule = subscriber.rule
    click.echo(f"{subscriber.email}: {rule.frequency}, {rule.locale}, {rule.timezone}", err=True)
    if result.rendered is None:
        click.echo(f"No message due: {result.note}.", err=True)
        return
    zone = ZoneInfo(rule.timezone)
    when = result.send_at.astimezone(zone).isoformat() if result.send_at else "at once (immediate)"
    click.echo(f"Next message: {result.note}, sent {when}", err=True)
    for item, reason in zip(result.items, result.reasons, strict=True):
        click.echo(f"  {item.id}: {describe(reason)}", err=True)
    token = make_token(subscriber.email, secret_key=settings.secret_key, list_id=settings.list_id)
    url = unsubscribe_url(settings.base_url, token)
    if output == "eml":
        domain = parseaddr(settings.sender.from_)[1].rpartition("@")[2] or "localhost"
        template = MessageTemplate.build(
            result.rendered,
            sender=settings.sender.from_,
            reply_to=settings.sender.reply_to,
            list_id=settings.list_id,
            list_name=settings.list_id,
            domain=domain,
            date=at,
        )
        data = template.personalize(
            recipient=subscriber.email,
            recipient_name=subscriber.name,
            message_id=make_message_id(key=f"preview/{subscriber.email}", domain=domain),
            unsubscribe_url=url,
            unsubscribe_mailto=None,
        )
        click.echo(data.decode("utf-8", "replace"), nl=False)
        return
    personal = result.rendered.personalized(unsubscribe_url=url)
    click.echo(f"Subject: {personal.subject}", err=True)
    click.echo(personal.html if output == "html" else personal.text)
