"""``publisher explain ITEM_ID``: who gets an item, when and in which language, and who not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from publisher.admin import (
    Delivery,
    ItemForecast,
    RecipientForecast,
    RuleForecast,
    forecast,
    similar_ids,
)
from publisher.cli._context import Context
from publisher.matching import Verdict
from publisher.preview import describe
from publisher.store.items import StoredItem, load_items
from publisher.subscriptions.model import Frequency, Rule

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NAMES_SHOWN = 3  # subscribers named per rule that does not get the item


@click.command(name="explain")
@click.argument("item_id")
@click.option(
    "--at",
    "at_text",
    metavar="DATETIME",
    help="As of this ISO 8601 time (default: now; no offset: UTC). The outbox is read as it is.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on standard output.")
@click.pass_obj
def explain_command(ctx: Context, item_id: str, at_text: str | None, as_json: bool) -> None:
    """Who will receive ITEM_ID, when, and in which language; and which rules do not, and why.

    For each rule of subscriptions.yaml that selects the item: its subscribers, the
    translation they read (and whether it is a fallback), and whether the item was
    already sent or queued to them, goes with the next send pass (alerts, and digests
    whose time has come), goes with their next digest (at their local send time, also
    given in UTC), or is held back (suppressed address, or back catalogue: collected
    before the subscriber joined). Exits 1 when there is no item ITEM_ID.
    """
    at = _parse_at(at_text)
    with ctx.engine.connect() as conn:
        found = load_items(conn, [item_id])
        if not found:
            close = similar_ids(conn, item_id)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise click.ClickException(f"no item {item_id!r} in the store{hint}")
        result = forecast(
            conn,
            found[0],
            ctx.subscriptions,
            default_locale=ctx.settings.default_locale,
            at=at,
        )
    if as_json:
        click.echo(json.dumps(_as_json(result), indent=2, ensure_ascii=False))
    else:
        _print(result, default_locale=ctx.settings.default_locale)


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 date-time", param_hint="--at"
        ) from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _iso(moment: datetime | None, zone: str = "UTC") -> str | None:
    return None if moment is None else moment.astimezone(ZoneInfo(zone)).isoformat()


def _rule_json(rule: Rule) -> dict[str, Any]:
    digest = rule.frequency is not Frequency.IMMEDIATE
    return {
        "frequency": rule.frequency.value,
        "locale": rule.locale,
        "fallback_locales": list(rule.fallback_locales),
        "timezone": rule.timezone,
        "send_at": f"{rule.send_at:%H:%M}" if digest else None,
        "weekday": _WEEKDAYS[rule.weekday] if rule.frequency is Frequency.WEEKLY else None,
        "fields_of_work": sorted(rule.fields_of_work),
        "countries": list(rule.countries_as_written),
        "exclude_fields_of_work": sorted(rule.exclude_fields_of_work),
        "exclude_countries": sorted(rule.exclude_countries),
    }


def _recipient_json(r: RecipientForecast) -> dict[str, Any]:
    zone = r.subscriber.rule.timezone
    row, suppression = r.row, r.suppression
    return {
        "email": r.subscriber.email,
        "name": r.subscriber.name,
        "group": r.subscriber.group,
        "state": r.delivery.value,
        "send_at": _iso(r.send_at),
        "send_at_local": _iso(r.send_at, zone),
        "joined_at": _iso(r.joined_at),
        "outbox": None
        if row is None
        else {
            "message_id": row.message_id,
            "status": row.status.value,
            "code": row.last_code,
            "error": row.last_error,
            "next_attempt_at": _iso(row.next_attempt_at),
            "finished_at": _iso(row.finished_at),
        },
        "suppression": None
        if suppression is None
        else {
            "reason": suppression.reason.value,
            "source": suppression.source,
            "since": _iso(suppression.created_at),
        },
    }


def _as_json(result: ItemForecast) -> dict[str, Any]:
    item = result.item
    receiving = []
    for r in result.receiving:
        if r.matched is None:  # never: receiving rules have their translation
            continue
        receiving.append(
            {
                "rule": _rule_json(r.rule),
                "why": {
                    "field_part": r.explanation.field_part.value,
                    "fields": list(r.explanation.fields),
                    "country_part": r.explanation.country_part.value,
                    "countries": list(r.explanation.countries),
                },
                "language": r.matched.translation.lang,
                "is_fallback": r.matched.is_fallback,
                "title": r.matched.translation.title,
                "recipients": [_recipient_json(recipient) for recipient in r.recipients],
            }
        )
    return {
        "item": {
            "id": item.id,
            "published": _iso(item.published),
            "first_seen": _iso(item.first_seen),
            "issuer": item.issuer,
            "fields_of_work": list(item.fields_of_work),
            "countries": list(item.countries),
            "languages": sorted(item.translations),
        },
        "at": _iso(result.at),
        "receiving": receiving,
        "not_receiving": [
            {
                "rule": _rule_json(r.rule),
                "verdict": r.explanation.verdict.value,
                "excluded_fields": list(r.explanation.excluded_fields),
                "excluded_countries": list(r.explanation.excluded_countries),
                "subscribers": [s.email for s in r.subscribers],
            }
            for r in result.not_receiving
        ],
    }


def _when(moment: datetime, zone: str) -> str:
    """``2025-03-04 09:00 Asia/Tashkent (04:00 UTC)``; the UTC date only when it differs."""
    local, utc = moment.astimezone(ZoneInfo(zone)), moment.astimezone(UTC)
    utc_text = f"{utc:%H:%M}" if utc.date() == local.date() else f"{utc:%Y-%m-%d %H:%M}"
    return f"{local:%Y-%m-%d %H:%M} {zone} ({utc_text} UTC)"


def _utc(moment: datetime | None, *, seconds: bool = False) -> str:
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return "?" if moment is None else f"{moment.astimezone(UTC):{pattern}} UTC"


def _state(r: RecipientForecast) -> str:
    zone = r.subscriber.rule.timezone
    row = r.row
    match r.delivery:
        case Delivery.SENT:
            return f"sent {_utc(r.send_at)}"
        case Delivery.QUEUED:
            again = ""
            if row is not None and row.last_error:
                again = f", retrying after {row.last_code or row.last_error}"
            return f"in the outbox, due {_utc(r.send_at, seconds=True)}{again}"
        case Delivery.SENDING:
            return "being sent"
        case Delivery.FAILED if row is not None:
            return f"failed {_utc(row.finished_at)}: {row.last_error} (`publisher retry --failed`)"
        case Delivery.SKIPPED:
            return "not sent: the address was suppressed when its message went"
        case Delivery.SUPPRESSED if (s := r.suppression) is not None:
            return f"held back: {s.reason.value} (by {s.source}, {_utc(s.created_at)})"
        case Delivery.BACK_CATALOGUE:
            if r.joined_at is None:
                return "held back: a new subscriber (joins with the next send pass), back catalogue"
            return f"held back: back catalogue (joined {_utc(r.joined_at)})"
        case Delivery.DUE:
            if r.send_at is None:
                return "with the next send pass"
            return f"with the next send pass (the digest of {_when(r.send_at, zone)} is due)"
        case Delivery.SCHEDULED if r.send_at is not None:
            return _when(r.send_at, zone)
    return r.delivery.value


def _why_not(r: RuleForecast) -> str:
    e, rule = r.explanation, r.rule
    detail = {
        Verdict.EXCLUDED_FIELD: f"excludes {', '.join(e.excluded_fields)}",
        Verdict.EXCLUDED_COUNTRY: f"excludes {', '.join(e.excluded_countries)}",
        Verdict.NO_FIELD_IN_COMMON: f"follows {', '.join(sorted(rule.fields_of_work))}",
        Verdict.NO_COUNTRY_IN_COMMON: f"follows {', '.join(rule.countries_as_written)}",
    }.get(e.verdict, "")
    names = [s.email for s in r.subscribers]
    shown = ", ".join(names[:_NAMES_SHOWN])
    if len(names) > _NAMES_SHOWN:
        shown += f" and {len(names) - _NAMES_SHOWN} more"
    return f"{shown}: {e.verdict.value} ({detail})"


def _title(item: StoredItem, default_locale: str) -> str:
    translation = item.translations.get(default_locale) or next(iter(item.translations.values()))
    return translation.title


def _print(result: ItemForecast, *, default_locale: str) -> None:
    console = Console(highlight=False)
    item = result.item
    console.print(f"[bold]{escape(item.id)}[/bold]: {escape(_title(item, default_locale))}")
    console.print(
        f"  published {_utc(item.published)}, collected {_utc(item.first_seen)}; "
        f"fields of work: {', '.join(item.fields_of_work) or 'none'}; "
        f"countries: {', '.join(item.countries) or 'none (concerns everyone)'}; "
        f"languages: {', '.join(sorted(item.translations))}",
        markup=False,
    )
    console.print(f"  as of {_utc(result.at)}", markup=False)
    receiving = result.receiving
    if receiving:
        count = sum(len(r.subscribers) for r in receiving)
        table = Table(
            title=f"Who gets it: {count} subscriber(s), {len(receiving)} rule(s)",
            title_justify="left",
        )
        for column in ("subscriber", "frequency", "language", "when", "why"):
            table.add_column(column, overflow="fold")
        for r in receiving:
            if r.matched is None:  # never: receiving rules have their translation
                continue
            language = r.matched.translation.lang + (" (fallback)" if r.matched.is_fallback else "")
            for number, recipient in enumerate(r.recipients):
                table.add_row(
                    escape(recipient.subscriber.email),
                    r.rule.frequency.value if number == 0 else "",
                    language if number == 0 else "",
                    escape(_state(recipient)),
                    escape(describe(r.explanation)) if number == 0 else "",
                    end_section=number == len(r.recipients) - 1,
                )
        console.print(table)
    else:
        console.print("No rule of the subscriptions selects this item.")
    if result.not_receiving:
        console.print(f"Rules that do not get it ({len(result.not_receiving)}):")
        for r in result.not_receiving:
            console.print(f"  {_why_not(r)}", markup=False)
