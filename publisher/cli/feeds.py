"""``publisher feeds build [--out DIR]``: every feed as static files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from rich.console import Console

from publisher import __version__
from publisher.cli._context import Context
from publisher.cli._progress import progress_bar
from publisher.feeds import FeedBuilder
from publisher.feeds.static import build_static
from publisher.feeds.websub import ping_hub


@click.group()
def feeds() -> None:
    """The Atom, RSS and JSON feeds."""


@feeds.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output directory (default: feeds.out_dir, var/feeds).",
)
@click.option("--force", is_flag=True, help="Build every feed again, changed or not.")
@click.pass_obj
def build(ctx: Context, out_dir: Path | None, force: bool) -> None:
    """Write every feed (per language: all, per field of work, per country; Atom, RSS,
    JSON Feed) and an OPML list per language. Only feeds whose content changed are
    written again; with a WebSub hub set, the hub is told which."""
    settings = ctx.settings
    target = out_dir if out_dir is not None else settings.feeds.out_dir
    builder = FeedBuilder(settings, taxonomy=ctx.taxonomy)
    with progress_bar("building feeds") as bar:
        report = build_static(builder, ctx.engine, target, force=force, progress=bar.update)
    console = Console()
    console.print(
        f"Feeds in {target}: {len(report.changed_feeds)} written, "
        f"{report.unchanged + report.skipped} unchanged"
    )
    hub = settings.feeds.websub_hub
    if hub and report.changed_feeds:
        urls = [f"{builder.base}{path}" for path in report.changed_feeds]
        pinged = asyncio.run(ping_hub(hub, urls, user_agent=f"publisher/{__version__}"))
        console.print(f"WebSub hub {hub}: {pinged.accepted} accepted, {len(pinged.failed)} failed")
        if pinged.failed:
            raise SystemExit(1)
