"""``publisher collect``: one collection pass over all sources."""

from __future__ import annotations

import asyncio

import click
from rich.console import Console
from rich.table import Table

from publisher.cli._context import Context
from publisher.cli._progress import progress_bar
from publisher.collect import SourceReport
from publisher.collect import collect as collect_sources


@click.command()
@click.option("--source", "sources", multiple=True, help="Collect only this source (repeatable).")
@click.pass_obj
def collect(ctx: Context, sources: tuple[str, ...]) -> None:
    """Collect new and edited items from every source; print what each one gave.

    Exits 1 when a source failed or reported a problem, 0 otherwise.
    """
    settings = ctx.settings
    known = {s.name for s in settings.sources}
    if unknown := [name for name in sources if name not in known]:
        configured = ", ".join(sorted(known)) or "none"
        raise click.BadParameter(
            f"unknown source {', '.join(unknown)}; configured: {configured}",
            param_hint="--source",
        )
    if not settings.sources:
        where = settings.config_path or "publisher.toml (not found)"
        raise click.ClickException(f"no sources are configured in {where}")
    count = len(sources) if sources else sum(s.enabled for s in settings.sources)
    with progress_bar("collecting", total=count) as bar:
        reports = asyncio.run(
            collect_sources(
                settings,
                ctx.engine,
                taxonomy=ctx.taxonomy,
                only=sources or None,
                progress=lambda report: bar.advance(),
            )
        )
    _print(reports)
    if not all(report.ok for report in reports):
        raise SystemExit(1)


def _print(reports: list[SourceReport]) -> None:
    console = Console()
    table = Table(title="Collection")
    for column in ("source", "new", "updated", "unchanged", "errors"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for r in reports:
        errors = len(r.problems) + (1 if r.error else 0)
        unchanged = "not modified" if r.not_modified else str(r.unchanged)
        table.add_row(
            r.source,
            str(r.new),
            str(r.updated),
            unchanged,
            f"[red]{errors}[/red]" if errors else "0",
        )
    console.print(table)
    err = Console(stderr=True)
    for r in reports:
        if r.error:
            err.print(f"[red]error[/red] {r.error}", markup=True, highlight=False)
        for problem in r.problems:
            err.print(f"[yellow]problem[/yellow] {r.source}: {problem}", highlight=False)
