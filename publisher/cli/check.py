"""``publisher check [PATH]``: validate ``subscriptions.yaml`` and the settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from publisher.cli._context import Context
from publisher.errors import PublisherError
from publisher.settings import load_settings
from publisher.subscriptions import check_subscriptions
from publisher.subscriptions.guard import confirm as confirm_edit
from publisher.subscriptions.guard import file_digest
from publisher.taxonomy import load_taxonomy


@click.command()
@click.argument("path", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--confirm",
    is_flag=True,
    help="When valid, let the running service apply this exact file even though it would "
    "mail many more addresses than the rules in force (see recipients_growth_limit).",
)
@click.pass_obj
def check(ctx: Context, path: Path | None, confirm: bool) -> None:
    """Validate subscriptions.yaml (default: the one the settings name) and publisher.toml.

    Prints one ``path:line:column: message`` line per problem and exits 1, or exits 0.
    """
    lines: list[str] = []
    try:
        settings = load_settings(ctx.config_path)
    except PublisherError as exc:
        lines.extend(str(exc).splitlines())
        settings = None
    if path is not None:
        target = path
    elif settings is not None:
        target = settings.subscriptions
    else:  # the settings are broken: check the file that sits beside them
        base = ctx.config_path.parent if ctx.config_path else Path.cwd()
        target = base / "subscriptions.yaml"
    try:
        taxonomy = load_taxonomy(settings.taxonomy if settings else None)
    except PublisherError as exc:
        raise click.ClickException(str(exc)) from exc
    locales = settings.locales if settings else None
    problems = check_subscriptions(target, taxonomy=taxonomy, locales=locales)
    lines.extend(str(problem) for problem in problems)
    for line in lines:
        click.echo(line)
    if lines:
        raise SystemExit(1)
    click.echo(f"{target}: OK", err=True)
    if confirm:
        digest = file_digest(target)
        with ctx.engine.begin() as conn:
            confirm_edit(conn, digest, now=datetime.now(UTC))
        ctx.engine.dispose()
        click.echo(
            f"{target}: confirmed (sha256 {digest[:12]}…); `publisher run` applies it "
            "within seconds",
            err=True,
        )
