"""``publisher demo [--serve]``: the whole pipeline on the bundled sample."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from publisher.demo import DemoResult, Received, run_demo


@click.command()
@click.option(
    "--serve",
    "keep_serving",
    is_flag=True,
    help="Keep the web app up afterwards (unsubscribe links work).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the web app the messages' unsubscribe links point at.",
)
def demo(keep_serving: bool, port: int) -> None:
    """Collect the sample items, mail the sample subscribers over SMTP to a local
    capture server (a Maildir under var/demo/), and show who received what."""
    result = run_demo(Path.cwd(), web_port=port)
    _print(result)
    if keep_serving:
        _serve(result, port)


def _print(result: DemoResult) -> None:
    console = Console()
    collected = sum(r.new for r in result.collected)
    console.print(f"Collected {collected} sample items into {result.database_url}")
    console.print(
        f"Queued {result.planned.alerts} alerts and {result.planned.digests} digests; "
        f"sent {result.delivered.sent}, to retry {result.delivered.retried}, "
        f"failed {result.delivered.failed}, skipped {result.delivered.skipped}"
    )
    by_recipient: dict[str, list[Received]] = defaultdict(list)
    for message in result.received:
        by_recipient[message.recipient].append(message)
    table = Table(title="What each subscriber received", expand=True)
    table.add_column("subscriber", no_wrap=True)
    table.add_column("language")
    table.add_column("messages", justify="right")
    table.add_column("first subject", overflow="ellipsis", no_wrap=True, ratio=1)
    for recipient, messages in sorted(by_recipient.items()):
        table.add_row(recipient, messages[0].language, str(len(messages)), messages[0].subject)
    console.print(table)
    console.print(f"The messages are in the Maildir {result.maildir}")
    feeds = result.settings.feeds.out_dir
    console.print(
        f"The feeds ({len(result.feeds.changed_feeds)} files: Atom, RSS and JSON Feed per "
        f"language, field of work and country) are in {feeds}, e.g. {feeds / 'en' / 'all.atom'}"
    )


def _serve(result: DemoResult, port: int) -> None:
    import uvicorn

    from publisher.store import open_store
    from publisher.web.app import create_app

    engine = open_store(result.database_url)
    app = create_app(result.settings, engine)
    base = result.settings.base_url
    Console().print(
        f"Serving the web app at {base}, feeds at {base}/feeds/en/all.atom (Ctrl-C stops)"
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
