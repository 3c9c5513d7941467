"""``publisher subscribers list|show|add|remove|set``: read and edit ``subscriptions.yaml``.

An edit changes only the lines it must (``publisher.subscriptions.editing``), the edited
text is read by the real loader before anything is written, and the file is replaced
in one rename. A refused edit leaves the file as it was, byte for byte, and prints the
loader's ``path:line:column: message`` problems (line numbers of the edited text).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table

from publisher.cli._context import Context
from publisher.errors import ValidationFailed
from publisher.subscriptions import Subscriber, Subscriptions, parse_subscriptions
from publisher.subscriptions.editing import (
    ENTRY_KEYS,
    EditRefused,
    Value,
    add_subscriber,
    locate,
    parse_value,
    remove_subscriber,
    rule_as_written,
    set_keys,
    write_atomically,
)

T = TypeVar("T")

_file_option = click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The subscriptions file (default: `subscriptions` in publisher.toml).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")


@click.group()
def subscribers() -> None:
    """Read and edit subscriptions.yaml in place, keeping its comments and layout.

    An edit is checked like `publisher check` before it is written; a refused one
    leaves the file untouched. Exit status: 0 done, 1 refused or not found, 2 usage.
    """


@subscribers.command(name="list")
@_file_option
@_json_option
@click.pass_obj
def list_command(ctx: Context, file: Path | None, as_json: bool) -> None:
    """Every subscriber, one row each (group members too), with the rule in force."""
    path = _path(ctx, file)
    loaded = _parse(ctx, path, _read(path))
    if as_json:
        rows = [_as_json(subscriber) for subscriber in loaded.subscribers]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{path}: {len(loaded.subscribers)} subscribers")
    columns = ("email", "name", "group", "locale", "time zone", "frequency", "send at")
    for column in (*columns, "fields of work", "countries"):
        table.add_column(column, overflow="fold")  # never cut an address short with "…"
    for subscriber in loaded.subscribers:
        rule = rule_as_written(subscriber.rule)
        locale = " → ".join([str(rule["locale"]), *rule["fallback_locales"]])
        table.add_row(
            subscriber.email,
            subscriber.name or "",
            subscriber.group or "",
            locale,
            str(rule["timezone"]),
            str(rule["frequency"]),
            _when(rule),
            _followed(rule["fields_of_work"], rule["exclude_fields_of_work"]),
            _followed(rule["countries"], rule["exclude_countries"]),
        )
    Console().print(table)


@subscribers.command()
@click.argument("email")
@_file_option
@_json_option
@click.pass_obj
def show(ctx: Context, email: str, file: Path | None, as_json: bool) -> None:
    """EMAIL's rule in force (after defaults and its group), and where it is written."""
    path = _path(ctx, file)
    text = _text(ctx, path)
    loaded = _parse(ctx, path, text)
    location = _refusing(path, lambda: locate(text, email))
    subscriber = loaded.get(email)
    if subscriber is None:  # cannot happen in a valid file; say so rather than crash
        raise click.ClickException(f"{path}: {email!r} is not in the file")
    rule = rule_as_written(subscriber.rule)
    own = f"group {location.group!r}" if location.group else "its entry"
    sources = {
        key: own if key in location.keys else "defaults" if key in location.defaults else "built-in"
        for key in rule
    }
    if as_json:
        click.echo(json.dumps({**_as_json(subscriber), "from": sources}, ensure_ascii=False))
        return
    where = f"{path}, line {location.line}"
    where += f", in group {location.group!r}: its rule is the group's" if location.group else ""
    table = Table(title=f"{subscriber.email}{f' ({subscriber.name})' if subscriber.name else ''}")
    table.add_column("key")
    table.add_column("value in force")
    table.add_column("written in")
    for key, value in rule.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        if key in ("fields_of_work", "countries") and not value:
            shown = "all"
        elif not value:
            shown = "none"
        elif key == "countries" and set(value) != subscriber.rule.countries:
            shown += f" = {', '.join(sorted(subscriber.rule.countries))}"  # regions expanded
        table.add_row(key, shown, sources[key])
    console = Console()
    console.print(f"Written at {where}.", highlight=False)
    console.print(table)


@subscribers.command()
@click.argument("email")
@click.option("--name", help="The person's or the desk's name.")
@click.option("--locale", help="Language of the messages: en, ru, pt_BR, ...")
@click.option(
    "--fallback-locale",
    "fallback_locales",
    multiple=True,
    help="Language for items not in --locale; repeat for more, in order.",
)
@click.option("--timezone", help="IANA time zone: Asia/Tashkent, UTC, ...")
@click.option("--frequency", metavar="[immediate|daily|weekly]", help="How often.")
@click.option("--send-at", metavar="HH:MM", help="Local time of a digest, 24-hour.")
@click.option("--weekday", metavar="[monday|...|sunday]", help="Day of a weekly digest.")
@click.option("--format", "body_format", metavar="[html|text]", help="Preferred body.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="SLUG",
    help="A field of work to follow; repeatable.",
)
@click.option(
    "--country",
    "countries",
    multiple=True,
    metavar="CODE_OR_REGION",
    help="A country or region to follow; repeatable.",
)
@click.option(
    "--exclude-field",
    "exclude_fields",
    multiple=True,
    metavar="SLUG",
    help="A field of work never to send; repeatable.",
)
@click.option(
    "--exclude-country",
    "exclude_countries",
    multiple=True,
    metavar="CODE_OR_REGION",
    help="A country or region never to send; repeatable.",
)
@_file_option
@click.pass_obj
def add(
    ctx: Context,
    email: str,
    name: str | None,
    locale: str | None,
    fallback_locales: tuple[str, ...],
    timezone: str | None,
    frequency: str | None,
    send_at: str | None,
    weekday: str | None,
    body_format: str | None,
    fields: tuple[str, ...],
    countries: tuple[str, ...],
    exclude_fields: tuple[str, ...],
    exclude_countries: tuple[str, ...],
    file: Path | None,
) -> None:
    """Add EMAIL at the end of subscribers:, written like the entries there.

    Only the keys given are written; `defaults` supplies the rest. Refused when the
    address is in the file already (groups included).
    """
    # In the order of the shipped sample's entries.
    given: dict[str, Value | None] = {
        "name": name,
        "locale": locale,
        "fallback_locales": fallback_locales,
        "timezone": timezone,
        "fields_of_work": fields,
        "countries": countries,
        "exclude_fields_of_work": exclude_fields,
        "exclude_countries": exclude_countries,
        "frequency": frequency,
        "weekday": weekday,
        "send_at": send_at,
        "format": body_format,
    }
    entry: dict[str, Value] = {"email": email}
    entry.update({key: value for key, value in given.items() if value is not None and value != ()})
    path = _path(ctx, file)
    _, new = _edit(ctx, path, lambda text: add_subscriber(text, entry))
    click.echo(f"Added {email} to {path}, line {locate(new, email).line}.")


@subscribers.command()
@click.argument("email")
@_file_option
@click.pass_obj
def remove(ctx: Context, email: str, file: Path | None) -> None:
    """Remove EMAIL: its entry with its own comments, or its item in a group's emails."""
    path = _path(ctx, file)
    old, _ = _edit(ctx, path, lambda text: remove_subscriber(text, email))
    location = locate(old, email)
    where = f"group {location.group!r}" if location.group else f"line {location.line}"
    click.echo(f"Removed {email} from {path} (was {where}).")


@subscribers.command(name="set")
@click.argument("email")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@_file_option
@click.pass_obj
def set_command(ctx: Context, email: str, assignments: tuple[str, ...], file: Path | None) -> None:
    """Change keys of EMAIL's own entry: KEY=VALUE writes the key, KEY= removes it.

    VALUE is a YAML value: weekly, "09:00", [UZ, KZ]. Refused for an address in a
    group: its rule is the group's.
    """
    changes: dict[str, Value | None] = {}
    for assignment in assignments:
        key, equals, raw = assignment.partition("=")
        key = key.strip()
        if not equals or not key:
            raise click.BadParameter(f"{assignment!r}: expected KEY=VALUE", param_hint="KEY=VALUE")
        if key not in ENTRY_KEYS:
            close = difflib.get_close_matches(key, ENTRY_KEYS, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"expected one of {', '.join(ENTRY_KEYS)}"
            )
            raise click.BadParameter(f"unknown key {key!r}; {hint}", param_hint="KEY=VALUE")
        if key in changes:
            raise click.BadParameter(f"{key} is given twice", param_hint="KEY=VALUE")
        try:
            changes[key] = parse_value(raw)
        except EditRefused as exc:
            raise click.BadParameter(f"{key}: {exc.message}", param_hint="KEY=VALUE") from exc
    path = _path(ctx, file)
    _, new = _edit(ctx, path, lambda text: set_keys(text, email, changes))
    click.echo(
        f"Changed {', '.join(changes)} of {email} in {path}, line {locate(new, email).line}."
    )


# -- reading, checking and writing the file -------------------------------------------


def _path(ctx: Context, file: Path | None) -> Path:
    return file if file is not None else ctx.settings.subscriptions


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read the file: {exc.strerror or exc}") from exc


def _text(ctx: Context, path: Path) -> str:
    return _decode(ctx, path, _read(path))


def _decode(ctx: Context, path: Path, data: bytes) -> str:
    """The file's text, byte order mark and line breaks kept, so they are written back."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        _parse(ctx, path, data)  # the loader says where and what
        raise


def _parse(ctx: Context, path: Path, data: bytes | str) -> Subscriptions:
    """The file's subscribers; its problems, if any, end the command (exit 1)."""
    try:
        return parse_subscriptions(
            data, path=path, taxonomy=ctx.taxonomy, locales=ctx.settings.locales
        )
    except ValidationFailed as exc:
        _refuse([str(p) for p in exc.problems], f"{path} has problems; run publisher check")


def _edit(ctx: Context, path: Path, change: Callable[[str], str]) -> tuple[str, str]:
    """Apply ``change`` to the file's text, check the result and write it; old and new text."""
    data = _read(path)
    text = _decode(ctx, path, data)
    new = _refusing(path, lambda: change(text))
    if new == text:
        click.echo("Nothing to change.", err=True)
        return text, new
    try:
        parse_subscriptions(new, path=path, taxonomy=ctx.taxonomy, locales=ctx.settings.locales)
    except ValidationFailed as exc:
        lines = new.splitlines()
        quoted = "".join(
            f"\n  {p.line} | {lines[p.line - 1]}" for p in exc.problems if 0 < p.line <= len(lines)
        )
        before = ""
        try:
            parse_subscriptions(
                text, path=path, taxonomy=ctx.taxonomy, locales=ctx.settings.locales
            )
        except ValidationFailed:
            before = f"; {path} had problems before this edit too: run publisher check"
        _refuse(
            [str(p) for p in exc.problems],
            f"the edit was refused and {path} was not written: the edited text would have "
            f"the problems above{before}{quoted}",
        )
    if _read(path) != data:
        raise click.ClickException(
            f"{path} changed while this edit was made; nothing was written: run it again"
        )
    write_atomically(path, new)
    return text, new


def _refusing(path: Path, work: Callable[[], T]) -> T:
    """``work()``; an EditRefused ends the command (exit 1), saying where and what."""
    try:
        return work()
    except EditRefused as exc:
        if exc.line is None:
            raise click.ClickException(exc.located(path)) from exc
        _refuse([exc.located(path)], f"refused; nothing was written to {path}")


def _refuse(problems: list[str], summary: str) -> NoReturn:
    """Print the problems on standard output (as `publisher check` does) and exit 1."""
    for problem in problems:
        click.echo(problem)
    raise click.ClickException(summary)


# -- showing rules --------------------------------------------------------------------


def _as_json(subscriber: Subscriber) -> dict[str, object]:
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "group": subscriber.group,
        "line": subscriber.line,
        **rule_as_written(subscriber.rule),
        "country_codes": sorted(subscriber.rule.countries),
    }


def _when(rule: dict[str, str | list[str]]) -> str:
    if rule["frequency"] == "immediate":
        return "at once"
    if rule["frequency"] == "weekly":
        return f"{rule['weekday']} {rule['send_at']}"
    return str(rule["send_at"])


def _followed(followed: str | list[str], excluded: str | list[str]) -> str:
    text = ", ".join(followed) if followed else "all"
    return f"{text}; not {', '.join(excluded)}" if excluded else text
