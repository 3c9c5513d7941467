"""``publisher status``: sources, outbox, failures and suppressions, against a real store.

The deployment helpers here are shared by the other administrators' command tests.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from publisher.cli import _context, cli
from publisher.store import open_store
from publisher.store.suppressions import suppress
from tests.delivery import conftest as smtp
from tests.delivery.conftest import MailServer

# The real aiosmtpd server of tests/delivery, for the tests here and those importing it.
certificates = smtp.certificates
start_server = smtp.start_server
server = smtp.server

REPO = Path(__file__).resolve().parents[2]
# The one item of the sample about cyber security: one alert per subscriber below.
CYBER_ITEM = "2025-02-06-cyber-incident-table-top-exercise"
OK, REFUSED, LATER = "ok@example.org", "refused@example.org", "later@example.org"
REFUSE_550 = "550 5.1.1 User unknown"
DEFER_451 = "451 4.2.2 Mailbox full, try again later"


@dataclass(frozen=True)
class Deployment:
    """A publisher.toml, subscriptions.yaml and sample content in a folder of its own."""

    root: Path

    @property
    def config(self) -> str:
        return str(self.root / "publisher.toml")

    def invoke(self, *args: str) -> Result:
        # Wide enough for rich's tables to keep each address and answer on one line.
        return CliRunner(env={"COLUMNS": "240"}).invoke(cli, ["--config", self.config, *args])

    def json(self, *args: str) -> tuple[int, Any]:
        result = self.invoke(*args, "--json")
        assert result.stdout.lstrip().startswith("{"), result.output
        return result.exit_code, json.loads(result.stdout)

    def subscribe(self, *emails: str) -> None:
        """Immediate alerts about cyber security for each address, in English."""
        entries = "".join(
            f"  - email: {email}\n    fields_of_work: [cyber-ict-security]\n" for email in emails
        )
        (self.root / "subscriptions.yaml").write_text(
            f"defaults:\n  frequency: immediate\n  timezone: UTC\nsubscribers:\n{entries}",
            encoding="utf-8",
        )


def make_deployment(
    root: Path, *, database_url: str, smtp_port: int, items: tuple[str, ...] = (CYBER_ITEM,)
) -> Deployment:
    """Only ``items`` of the sample content (all their languages): collecting stays quick."""
    (root / "content").mkdir()
    for path in (REPO / "content").iterdir():
        if path.name.startswith(items):
            shutil.copy(path, root / "content" / path.name)
    (root / "publisher.toml").write_text(
        f'database_url = "{database_url}"\n'
        'base_url = "https://news.example.org"\n'
        '[sender]\nfrom = "OSCE News <news@example.org>"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\n'
        '[[sources]]\nname = "newsroom"\nkind = "folder"\npath = "content"\n',
        encoding="utf-8",
    )
    deployment = Deployment(root)
    deployment.subscribe(OK, REFUSED, LATER)
    return deployment


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No PUBLISHER_* setting from outside; the commands' stores closed at the end.

    Each command opens the store through its Context and never disposes of it: the
    engines are kept here and disposed of, so that no PostgreSQL connection is left to
    the garbage collector (whose ResourceWarning the test settings make an error).
    """
    for name in (
        "PUBLISHER_CONFIG",
        "PUBLISHER_DATABASE_URL",
        "PUBLISHER_SMTP_HOST",
        "PUBLISHER_SMTP_PORT",
        "PUBLISHER_SUBSCRIPTIONS",
    ):
        monkeypatch.delenv(name, raising=False)
    engines: list[Engine] = []

    def open_and_keep(url: str) -> Engine:
        engines.append(open_store(url))
        return engines[-1]

    monkeypatch.setattr(_context, "open_store", open_and_keep)
    yield
    for engine in engines:
        engine.dispose()


@pytest.fixture
def deployment(
    tmp_path: Path, store_url: str, server: MailServer, clean_environment: None
) -> Deployment:
    """Three subscribers of the cyber-security item, mailed through the test's aiosmtpd."""
    return make_deployment(tmp_path, database_url=store_url, smtp_port=server.port)


@pytest.fixture
def offline(tmp_path: Path, store_url: str, clean_environment: None) -> Deployment:
    """The same deployment with no mail server: for commands that send nothing."""
    return make_deployment(tmp_path, database_url=store_url, smtp_port=9)


def send_with_refusals(deployment: Deployment, server: MailServer) -> Result:
    """Register the subscribers, collect the sample, then send while the server refuses
    REFUSED for good (550) and LATER for now (451)."""
    assert deployment.invoke("send").exit_code == 0  # registers: nothing is due yet
    assert deployment.invoke("collect").exit_code == 0
    server.handler.refuse.update({REFUSED: REFUSE_550, LATER: DEFER_451})
    result = deployment.invoke("send")
    assert result.exit_code == 1, result.output  # a message failed for good
    assert [m.recipients for m in server.handler.messages] == [(OK,)]
    return result


def test_status_shows_failures_with_their_reasons_and_the_outbox(
    deployment: Deployment, server: MailServer
) -> None:
    """After a 550 and a 451, status counts the outbox, lists both answers and exits 1."""
    send_with_refusals(deployment, server)
    code, report = deployment.json("status")
    assert code == 1
    assert report["ok"] is False
    outbox = report["outbox"]
    assert outbox["counts"] == {"queued": 1, "sending": 0, "sent": 1, "failed": 1, "skipped": 0}
    assert outbox["due_now"] == 0 and outbox["waiting"] == 1
    assert outbox["failed_last_24h"] == 1
    next_retry = datetime.fromisoformat(outbox["next_retry_at"])
    assert datetime.now(UTC) < next_retry < datetime.now(UTC) + timedelta(minutes=2)
    [failure] = report["failures"]
    assert failure["recipient"] == REFUSED and failure["code"] == 550
    assert "User unknown" in failure["reason"]
    assert failure["message_id"].startswith("<") and failure["message_id"].endswith(">")
    assert datetime.fromisoformat(failure["failed_at"]) <= datetime.now(UTC)
    [waiting] = report["retrying"]
    assert (waiting["recipient"], waiting["code"], waiting["messages"]) == (LATER, 451, 1)
    assert "Mailbox full" in waiting["reason"]

    text = deployment.invoke("status")
    assert text.exit_code == 1
    for expected in (REFUSED, "550", "User unknown", LATER, "451", "Mailbox full"):
        assert expected in text.stdout.replace("\n", " "), expected
    assert "1 message(s) failed in the last 24 hours" in text.stdout

    code, report = deployment.json("status", "--failures", "0")
    assert code == 1 and report["failures"] == [] and report["retrying"] == []
    assert report["outbox"]["counts"]["failed"] == 1


def test_status_exits_1_while_a_sources_last_run_failed(offline: Deployment) -> None:
    """Status exits 1 while a source's last run failed, 0 once it ran again (error still shown)."""
    with open(offline.config, "a", encoding="utf-8") as settings:
        settings.write('[[sources]]\nname = "press"\nkind = "folder"\npath = "press"\n')
    code, report = offline.json("status")
    assert code == 0, "a source never collected is not a failure"
    assert [s["last_run"] for s in report["sources"]] == [None, None]

    assert offline.invoke("collect").exit_code == 1
    code, report = offline.json("status")
    assert code == 1
    newsroom, press = report["sources"]
    assert newsroom["failing"] is False and newsroom["last_run"]["new"] > 0
    assert press["failing"] is True
    assert "is not a folder" in press["last_run"]["error"]
    assert press["last_success_at"] is None
    text = offline.invoke("status")
    assert text.exit_code == 1
    assert "last collection failed: press" in text.stdout

    (offline.root / "press").mkdir()
    assert offline.invoke("collect").exit_code == 0
    code, report = offline.json("status")
    assert code == 0
    press = report["sources"][1]
    assert press["failing"] is False and press["last_success_at"] is not None
    assert "is not a folder" in press["last_error"]["error"]
    assert newsroom["last_run"]["new"] > 0 and report["sources"][0]["last_run"]["new"] == 0
    assert "OK" in offline.invoke("status").stdout


def test_status_counts_suppressions_by_reason_newest_first(
    offline: Deployment, engine: Engine
) -> None:
    """Suppressed addresses are counted by reason; the latest five are listed, newest first."""
    start = datetime(2025, 3, 1, tzinfo=UTC)
    reasons = ["unsubscribed"] * 4 + ["bounced"] * 2 + ["complained"]
    with engine.begin() as conn:
        for number, reason in enumerate(reasons):
            suppress(
                conn,
                f"reader{number}@example.org",
                reason=reason,
                now=start + timedelta(hours=number),
                source="one-click" if reason == "unsubscribed" else "smtp",
            )
    code, report = offline.json("status")
    assert code == 0
    assert report["suppressions"]["counts"] == {
        "unsubscribed": 4,
        "bounced": 2,
        "complained": 1,
        "manual": 0,
    }
    assert report["suppressions"]["total"] == 7
    latest = [s["email"] for s in report["suppressions"]["latest"]]
    assert latest == [f"reader{n}@example.org" for n in (6, 5, 4, 3, 2)]
    text = offline.invoke("status").stdout
    assert "Suppressed addresses: 7 (unsubscribed 4, bounced 2, complained 1, manual 0)" in text
