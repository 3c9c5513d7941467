"""The ``publisher`` command. Each sub-command lives in a module of its own."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from publisher import __version__
from publisher.cli._context import Context
from publisher.cli.check import check
from publisher.cli.collect import collect
from publisher.cli.demo import demo
from publisher.cli.explain import explain_command
from publisher.cli.feeds import feeds
from publisher.cli.preview import preview_command
from publisher.cli.resubscribe import resubscribe
from publisher.cli.retry import retry_command
from publisher.cli.run import run
from publisher.cli.send import send
from publisher.cli.serve import serve
from publisher.cli.status import status
from publisher.cli.subscribers import subscribers
from publisher.cli.suppress import suppress_command
from publisher.cli.worker import worker
from publisher.errors import PublisherError
from publisher.logs import LogFormat, configure_logging


class _Group(click.Group):
    """Any error of ours a command lets through ends as one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="PUBLISHER_CONFIG",
    help="Settings file (default: ./publisher.toml when present).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--log-format",
    type=click.Choice([f.value for f in LogFormat], case_sensitive=False),
    default=LogFormat.TEXT.value,
    show_default=True,
    envvar="PUBLISHER_LOG_FORMAT",
    help="text: one line for people; json: one JSON object per line for log collectors.",
)
@click.version_option(__version__, prog_name="publisher")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, log_format: str) -> None:
    """A multilingual newsletter and feed publisher."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    configure_logging(level=level, log_format=LogFormat(log_format.lower()))
    ctx.obj = Context(config_path=config_path)
    ctx.call_on_close(ctx.obj.close)


cli.add_command(check)
cli.add_command(collect)
cli.add_command(demo)
cli.add_command(feeds)
cli.add_command(run)
cli.add_command(preview_command)
cli.add_command(send)
cli.add_command(serve)
cli.add_command(status)
cli.add_command(subscribers)
cli.add_command(retry_command)
cli.add_command(resubscribe)
cli.add_command(suppress_command)
cli.add_command(explain_command)
cli.add_command(worker)


def main() -> None:
    cli(prog_name="publisher")
    sys.exit(0)
