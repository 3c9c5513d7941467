"""``publisher status``: sources, outbox, failures and suppressions at a glance."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from publisher.cli._context import Context
from publisher.store.outbox import (
    OutboxRow,
    QueueTimes,
    Status,
    WaitingGroup,
    failed_since,
    latest_failures,
    queue_times,
    status_counts,
    waiting_retries,
)
from publisher.store.sources import SourceRun, last_failed_runs, last_successes, latest_runs
from publisher.store.suppressions import (
    Reason,
    Suppression,
    latest_suppressions,
    suppression_counts,
)

LATEST_SUPPRESSIONS = 5
FAILURE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    kind: str
    last_run: SourceRun | None
    last_success_at: datetime | None
    last_failure: SourceRun | None  # the latest run that ended in an error, if any

    @property
    def failing(self) -> bool:
        return self.last_run is not None and self.last_run.error is not None


@dataclass(frozen=True, slots=True)
class _Status:
    now: datetime
    sources: list[_Source]
    counts: dict[Status, int]
    queue: QueueTimes
    failed_recently: int
    failures: list[OutboxRow]
    retrying: list[WaitingGroup]
    suppressed: dict[Reason, int]
    latest_suppressed: list[Suppression]

    @property
    def ok(self) -> bool:
        return not self.failed_recently and not any(s.failing for s in self.sources)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object on standard output.")
@click.option(
    "--failures",
    "limit",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    metavar="N",
    help="How many of the latest failures (and of the messages waiting to retry) to list.",
)
@click.pass_obj
def status(ctx: Context, as_json: bool, limit: int) -> None:
    """How each source's last collection went, the outbox by status, the latest
    failures and the suppressed addresses.

    Exits 1 when a configured source's last collection failed, or when a message
    failed for good in the last 24 hours; 0 otherwise. Problems a source reported
    with single items are listed but do not change the exit status.
    """
    report = _gather(ctx, now=datetime.now(UTC), limit=limit)
    if as_json:
        click.echo(json.dumps(_as_json(report), indent=2, ensure_ascii=False))
    else:
        _print(report)
    if not report.ok:
        raise SystemExit(1)


def _gather(ctx: Context, *, now: datetime, limit: int) -> _Status:
    configured = ctx.settings.sources
    names = [source.name for source in configured]
    with ctx.engine.connect() as conn:
        runs = {run.source: run for run in latest_runs(conn, names)}
        failures = last_failed_runs(conn, names)
        successes = last_successes(conn)
        return _Status(
            now=now,
            sources=[
                _Source(
                    s.name, s.kind, runs.get(s.name), successes.get(s.name), failures.get(s.name)
                )
                for s in configured
            ],
            counts=status_counts(conn),
            queue=queue_times(conn, now=now),
            failed_recently=failed_since(conn, now - FAILURE_WINDOW),
            failures=latest_failures(conn, limit=limit),
            retrying=waiting_retries(conn, limit=limit),
            suppressed=suppression_counts(conn),
            latest_suppressed=latest_suppressions(conn, limit=LATEST_SUPPRESSIONS),
        )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _utc(moment: datetime | None, *, seconds: bool = False) -> str:
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return "—" if moment is None else f"{moment.astimezone(UTC):{pattern}} UTC"


def _run_json(run: SourceRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "new": run.new,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "not_modified": run.not_modified,
        "error": run.error,
        "problems": list(run.problems),
    }


def _row_json(row: OutboxRow) -> dict[str, Any]:
    return {
        "recipient": row.recipient,
        "message_id": row.message_id,
        "code": row.last_code,
        "reason": row.last_error,
        "attempts": row.attempts,
        "failed_at": _iso(row.finished_at),
    }


def _as_json(report: _Status) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "now": _iso(report.now),
        "sources": [
            {
                "name": s.name,
                "kind": s.kind,
                "failing": s.failing,
                "last_run": _run_json(s.last_run),
                "last_success_at": _iso(s.last_success_at),
                "last_error": None
                if s.last_failure is None
                else {"at": _iso(s.last_failure.finished_at), "error": s.last_failure.error},
            }
            for s in report.sources
        ],
        "outbox": {
            "counts": {status.value: count for status, count in report.counts.items()},
            "due_now": report.queue.due,
            "waiting": report.queue.waiting,
            "next_retry_at": _iso(report.queue.next_attempt_at),
            "expired_leases": report.queue.expired_leases,
            "failed_last_24h": report.failed_recently,
        },
        "failures": [_row_json(row) for row in report.failures],
        "retrying": [
            {
                "code": group.code,
                "reason": group.error,
                "messages": group.messages,
                "next_attempt_at": _iso(group.next_attempt_at),
                "recipient": group.recipient,
            }
            for group in report.retrying
        ],
        "suppressions": {
            "counts": {reason.value: count for reason, count in report.suppressed.items()},
            "total": sum(report.suppressed.values()),
            "latest": [
                {
                    "email": s.email,
                    "reason": s.reason.value,
                    "source": s.source,
                    "created_at": _iso(s.created_at),
                    "detail": s.detail,
                }
                for s in report.latest_suppressed
            ],
        },
    }


def _print(report: _Status) -> None:
    console = Console()
    _print_sources(console, report.sources)
    _print_outbox(console, report)
    if report.failures:
        table = Table(title=f"Latest failures ({len(report.failures)})", title_justify="left")
        for column in ("failed at", "recipient", "code", "reason", "message id"):
            table.add_column(
                column, justify="right" if column == "code" else "left", overflow="fold"
            )
        for row in report.failures:
            table.add_row(
                _utc(row.finished_at),
                escape(row.recipient),
                str(row.last_code or "—"),
                escape(row.last_error or ""),
                escape(row.message_id),
            )
        console.print(table)
    if report.retrying:
        table = Table(title="Waiting to retry, by last answer", title_justify="left")
        for column in ("messages", "code", "last answer", "next attempt", "to"):
            table.add_column(
                column,
                justify="right" if column in ("messages", "code") else "left",
                overflow="fold",
            )
        for group in report.retrying:
            others = f" and {group.messages - 1} more" if group.messages > 1 else ""
            table.add_row(
                str(group.messages),
                str(group.code or "—"),
                escape(group.error),
                _utc(group.next_attempt_at, seconds=True),
                escape(group.recipient) + others,
            )
        console.print(table)
    _print_suppressions(console, report)
    if report.ok:
        console.print(
            "[green]OK[/green]: no source failing, no message failed in the last 24 hours."
        )
    else:
        reasons = []
        if failing := [s.name for s in report.sources if s.failing]:
            reasons.append(f"last collection failed: {', '.join(failing)}")
        if report.failed_recently:
            reasons.append(f"{report.failed_recently} message(s) failed in the last 24 hours")
        console.print(f"[red]Not OK[/red]: {'; '.join(reasons)}.", highlight=False)


def _print_sources(console: Console, sources: list[_Source]) -> None:
    table = Table(title="Sources", title_justify="left")
    for column in ("source", "last run", "new", "updated", "unchanged", "result"):
        table.add_column(
            column, justify="right" if column in ("new", "updated", "unchanged") else "left"
        )
    for s in sources:
        run = s.last_run
        if run is None:
            table.add_row(s.name, "never", "", "", "", "not collected yet")
            continue
        if run.error:
            result = "[red]failed[/red]"
        elif run.problems:
            result = f"[yellow]{len(run.problems)} problem(s)[/yellow]"
        else:
            result = "ok"
        table.add_row(
            s.name,
            _utc(run.finished_at),
            str(run.new),
            str(run.updated),
            "not modified" if run.not_modified else str(run.unchanged),
            result,
        )
    console.print(table)
    for s in sources:
        if s.last_failure is not None:
            failure = s.last_failure
            again = "" if s.failing else f" (ok since {_utc(s.last_success_at)})"
            console.print(
                f"{s.name}: last error {_utc(failure.finished_at)}{again}: {failure.error}",
                highlight=False,
                markup=False,
            )
        for problem in s.last_run.problems if s.last_run is not None else ():
            console.print(f"{s.name}: problem: {problem}", highlight=False, markup=False)


def _print_outbox(console: Console, report: _Status) -> None:
    table = Table(title="Outbox", title_justify="left")
    table.add_column("status")
    table.add_column("messages", justify="right")
    table.add_column("")
    queue = report.queue
    notes = {
        Status.QUEUED: f"{queue.due} due now"
        + (
            f"; next retry {_utc(queue.next_attempt_at, seconds=True)}"
            if queue.next_attempt_at
            else ""
        ),
        Status.SENDING: f"{queue.expired_leases} with an expired lease"
        if queue.expired_leases
        else "",
        Status.FAILED: f"{report.failed_recently} in the last 24 hours",
    }
    for state, count in report.counts.items():
        table.add_row(state.value, str(count), notes.get(state, ""))
    console.print(table)


def _print_suppressions(console: Console, report: _Status) -> None:
    total = sum(report.suppressed.values())
    parts = ", ".join(f"{reason.value} {count}" for reason, count in report.suppressed.items())
    console.print(f"Suppressed addresses: {total} ({parts})", highlight=False)
    if not report.latest_suppressed:
        return
    table = Table(title="Latest suppressions", title_justify="left")
    for column in ("since", "address", "reason", "by", "detail"):
        table.add_column(column, overflow="fold")
    for s in report.latest_suppressed:
        table.add_row(
            _utc(s.created_at),
            escape(s.email),
            s.reason.value,
            escape(s.source),
            escape(s.detail or ""),
        )
    console.print(table)
