"""``publisher run``: the service — scheduled collection and delivery plus the web app."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AbstractAsyncContextManager
from email.utils import parseaddr
from typing import TYPE_CHECKING

import click

from publisher.cli._context import Context
from publisher.delivery import SmtpTransport, Transport
from publisher.delivery.message import signer_from_settings
from publisher.errors import PublisherError, ValidationFailed
from publisher.rendering.emails import EmailRenderer
from publisher.settings import DEFAULT_SECRET_KEY
from publisher.subscriptions import Subscriptions, load_subscriptions

if TYPE_CHECKING:
    from publisher.scheduling import Service

log = logging.getLogger(__name__)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.pass_obj
def run(ctx: Context, host: str, port: int) -> None:
    """Run the service: collect on schedule, send alerts and digests, serve the web app.

    Stops on SIGINT or SIGTERM after the sends under way have finished.
    """
    settings = ctx.settings
    if settings.secret_key == DEFAULT_SECRET_KEY:
        # The service mails unsubscribe links signed with this key: with the published
        # default anyone could forge them. Only `publisher demo` runs without a key.
        raise click.ClickException(
            f"secret_key is the default {DEFAULT_SECRET_KEY!r}: set PUBLISHER_SECRET_KEY "
            "(or secret_key in publisher.toml) before `publisher run`"
        )
    # Imported here: the other commands need neither the scheduler nor the web stack.
    from publisher.scheduling import Service

    taxonomy = ctx.taxonomy

    def read_subscriptions() -> Subscriptions:
        return load_subscriptions(
            settings.subscriptions, taxonomy=taxonomy, locales=settings.locales
        )

    def renderer(subscriptions: Subscriptions) -> EmailRenderer:
        return EmailRenderer(
            taxonomy=subscriptions.taxonomy,
            base_url=settings.base_url,
            organisation=parseaddr(settings.sender.from_)[0] or settings.list_id,
            templates=settings.templates,
        )

    def transport() -> AbstractAsyncContextManager[Transport]:
        return SmtpTransport(settings.smtp, password=password)

    try:
        # Wrong SMTP credentials or DKIM settings stop the command now, not every pass later.
        password = settings.smtp_password
        SmtpTransport(settings.smtp, password=password)
        signer_from_settings(settings.dkim)
    except PublisherError as exc:
        raise click.ClickException(str(exc)) from exc
    service = Service(
        settings,
        ctx.engine,
        taxonomy=taxonomy,
        subscriptions=read_subscriptions,
        renderer=renderer,
        transport=transport,
    )
    try:
        service.load_subscriptions()  # a broken file stops the command before anything runs
    except ValidationFailed as exc:
        raise click.ClickException(
            f"{settings.subscriptions} has problems; nothing was done:\n{exc}"
        ) from exc
    try:
        asyncio.run(_serve(service, host=host, port=port))
    except PublisherError as exc:
        raise click.ClickException(str(exc)) from exc


async def _serve(service: Service, *, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.request_stop)
    try:
        await service.run(host=host, port=port)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
