"""While the service runs, subscriptions.yaml is watched: good edits apply, broken ones are
reported and change nothing, and one that would mail far more people waits for a confirm."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from click.testing import CliRunner
from sqlalchemy import Engine

from publisher.cli import cli
from publisher.collect import collect
from publisher.delivery import Transport
from publisher.rendering.emails import EmailRenderer
from publisher.scheduling import Service
from publisher.scheduling.service import Reload
from publisher.settings import Settings
from publisher.subscriptions import Subscriptions, load_subscriptions
from publisher.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parents[2]
TWO = """\
# Two readers of policing news.
defaults:
  fields_of_work: [policing]
  frequency: daily
  send_at: "09:00"
subscribers:
  - email: one@example.org
  - email: two@example.org
"""


def _everyone(count: int) -> str:
    lines = ["defaults:", "  frequency: daily", '  send_at: "09:00"', "subscribers:"]
    lines += [f"  - email: reader{n}@example.org" for n in range(count)]
    return "\n".join(lines) + "\n"


def _no_transport() -> AbstractAsyncContextManager[Transport]:
    raise AssertionError("nothing is sent in these tests")


@pytest.fixture
def service(tmp_path: Path, engine: Engine) -> Callable[[], Service]:
    """A service over a real store holding the sample items, reading a real file."""
    shutil.copytree(REPO / "content", tmp_path / "content")
    path = tmp_path / "subscriptions.yaml"
    path.write_text(TWO, encoding="utf-8")
    settings = Settings.model_validate(
        {
            "base_url": "https://news.example.org",
            "database_url": engine.url.render_as_string(hide_password=False),
            "secret_key": "reload-test-key",
            "subscriptions": path,
            "sources": [{"name": "newsroom", "kind": "folder", "path": tmp_path / "content"}],
            "feeds": {"out_dir": tmp_path / "feeds"},
        }
    )
    taxonomy = load_taxonomy()
    asyncio.run(collect(settings, engine, taxonomy=taxonomy))  # items of this week

    def read() -> Subscriptions:
        return load_subscriptions(path, taxonomy=taxonomy, locales=settings.locales)

    def make() -> Service:
        return Service(
            settings,
            engine,
            taxonomy=taxonomy,
            subscriptions=read,
            renderer=lambda s: EmailRenderer(
                taxonomy=s.taxonomy, base_url=settings.base_url, organisation="OSCE News"
            ),
            transport=_no_transport,
        )

    return make


def _edit(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_a_good_edit_applies_and_brings_the_digest_jobs_in_line(
    service: Callable[[], Service],
) -> None:
    """A new send time adds its digest job and the old one goes, without a restart."""
    running = service()

    async def scenario() -> tuple[Reload, Reload, list[str]]:
        running.load_subscriptions()
        scheduler = AsyncIOScheduler(timezone=UTC)
        running.scheduler = scheduler
        running.schedule(scheduler, first_collection=datetime.now(UTC))
        scheduler.start(paused=True)
        try:
            unchanged = await running.reload_if_changed()
            path = running._settings.subscriptions
            _edit(path, TWO.replace('"09:00"', '"07:15"'))
            applied = await running.reload_if_changed()
            return unchanged, applied, sorted(job.id for job in scheduler.get_jobs())
        finally:
            scheduler.shutdown(wait=False)

    unchanged, applied, jobs = asyncio.run(scenario())
    assert (unchanged, applied) == (Reload.UNCHANGED, Reload.APPLIED)
    assert "digest:daily:UTC:07:15" in jobs
    assert "digest:daily:UTC:09:00" not in jobs
    assert {r.send_at.hour for r in running.subscriptions.rules()} == {7}


def test_a_broken_edit_is_reported_and_the_last_good_rules_stay(
    service: Callable[[], Service], caplog: pytest.LogCaptureFixture
) -> None:
    """A typo'd slug is logged with its line and column; the fix is picked up after."""
    running = service()
    running.load_subscriptions()
    path = running._settings.subscriptions
    before = running.subscriptions
    _edit(path, TWO.replace("[policing]", "[policeing]"))
    with caplog.at_level(logging.ERROR):
        outcome = asyncio.run(running.reload_if_changed())
    assert outcome is Reload.BROKEN
    assert running.subscriptions is before
    assert "subscriptions.yaml:3:" in caplog.text and "policeing" in caplog.text
    assert asyncio.run(running.reload_if_changed()) is Reload.UNCHANGED  # reported once
    _edit(path, TWO.replace("two@example.org", "three@example.org"))
    assert asyncio.run(running.reload_if_changed()) is Reload.APPLIED
    assert {s.email for s in running.subscriptions.subscribers} == {
        "one@example.org",
        "three@example.org",
    }


def test_an_edit_that_mails_everyone_waits_for_a_confirm(
    service: Callable[[], Service], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Two policing readers → forty readers of everything is held back with one warning
    until `publisher check --confirm` confirms that exact file; then it applies."""
    running = service()
    running.load_subscriptions()
    path = running._settings.subscriptions
    _edit(path, _everyone(40))
    with caplog.at_level(logging.WARNING):
        first = asyncio.run(running.reload_if_changed())
        second = asyncio.run(running.reload_if_changed())
    assert (first, second) == (Reload.HELD, Reload.HELD)
    assert caplog.text.count("would mail 40 addresses instead of 2") == 1
    assert len(running.subscriptions.subscribers) == 2  # the rules in force stay

    settings = running._settings
    (tmp_path / "publisher.toml").write_text(
        f'database_url = "{settings.database_url}"\nsubscriptions = "{path}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["--config", str(tmp_path / "publisher.toml"), "check", "--confirm"]
    )
    assert result.exit_code == 0, result.output
    assert "confirmed" in result.output
    assert asyncio.run(running.reload_if_changed()) is Reload.APPLIED
    assert len(running.subscriptions.subscribers) == 40


def test_a_modest_growth_applies_at_once(service: Callable[[], Service]) -> None:
    """Two policing readers becoming five is not held back: the floor is ten more."""
    running = service()
    running.load_subscriptions()
    _edit(running._settings.subscriptions, _everyone(5))
    assert asyncio.run(running.reload_if_changed()) is Reload.APPLIED
