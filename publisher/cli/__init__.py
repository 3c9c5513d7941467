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
from publisher.cli.feeds import feeds
from publisher.cli.preview import preview_command
from publisher.cli.run import run
from publisher.cli.send import send
from publisher.cli.serve import serve
from publisher.errors import PublisherError


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
@click.version_option(__version__, prog_name="publisher")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int) -> None:
    """A multilingual newsletter and feed publisher."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config_path=config_path)


cli.add_command(check)
cli.add_command(collect)
cli.add_command(demo)
cli.add_command(feeds)
cli.add_command(run)
cli.add_command(preview_command)
cli.add_command(send)
cli.add_command(serve)


def main() -> None:
    cli(prog_name="publisher")
    sys.exit(0)
