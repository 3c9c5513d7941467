"""``publisher serve``: the web app alone, under uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import signal

import click

from publisher.cli._context import Context
from publisher.settings import DEFAULT_SECRET_KEY

log = logging.getLogger(__name__)
# On SIGINT/SIGTERM uvicorn stops accepting, lets requests in flight finish, then exits;
# after this many seconds it closes what is left.
GRACEFUL_SHUTDOWN_SECONDS = 10


class _Stopped(Exception):
    """SIGINT or SIGTERM arrived and uvicorn has already shut down gracefully."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve the web app (unsubscribe pages, one-click unsubscribe, health)."""
    settings = ctx.settings
    if settings.secret_key == DEFAULT_SECRET_KEY:
        # With the published default key anyone could sign unsubscribe tokens.
        if not _is_loopback(host):
            raise click.ClickException(
                f"secret_key is the default {DEFAULT_SECRET_KEY!r}: set PUBLISHER_SECRET_KEY "
                f"before serving on {host}"
            )
        log.warning("secret_key is the default: unsubscribe links are not protected")
    # Imported here: the other commands need neither the web stack nor uvicorn.
    import uvicorn

    from publisher.web import create_app

    app = create_app(settings, ctx.engine)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    # uvicorn catches SIGINT and SIGTERM, finishes the requests in flight and the
    # application's shutdown, then raises the signal again with the handlers it found.
    # Ours end the command quietly with status 0; Python's default SIGINT handler would
    # raise KeyboardInterrupt inside the event loop and print a traceback.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run()
    except _Stopped:
        log.info("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
