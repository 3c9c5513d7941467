from __future__ import annotations

import email
import email.policy
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.cli import cli

REPO = Path(__file__).resolve().parents[2]
SUBSCRIPTIONS = """\
subscribers:
  - email: analyst@example.org
    locale: ru
    timezone: Asia/Tashkent
    fields_of_work: [policing]
    countries: [central-asia]
    frequency: immediate
  - email: desk@example.org
    fields_of_work: [elections]
    timezone: Europe/Vienna
    send_at: "07:30"
    frequency: daily
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A deployment whose subscribers joined before the sample was collected, and whose
    outbox remembers a century, so that previews may ask about 2099."""
    shutil.copytree(REPO / "content", tmp_path / "content")
    (tmp_path / "subscriptions.yaml").write_text(SUBSCRIPTIONS, encoding="utf-8")
    (tmp_path / "publisher.toml").write_text(
        '[smtp]\nport = 9\n[outbox]\nkeep = "36500d"\n'
        '[[sources]]\nname = "newsroom"\nkind = "folder"\npath = "content"\n',
        encoding="utf-8",
    )
    monkeypatch.delenv("PUBLISHER_CONFIG", raising=False)
    runner = CliRunner()
    path = str(tmp_path / "publisher.toml")
    assert runner.invoke(cli, ["--config", path, "send", "--dry-run"]).exit_code == 0
    return path


def test_a_new_subscriber_is_told_why_nothing_comes(config: str) -> None:
    """Before joining is recorded, the stored items are back catalogue: nothing is due."""
    result = CliRunner().invoke(cli, ["--config", config, "preview", "analyst@example.org"])
    assert result.exit_code == 0
    assert "a new subscriber" in result.stderr


def test_preview_shows_the_next_alert_and_why(config: str, tmp_path: Path) -> None:
    """An immediate subscriber's next alert, in Russian, with the part of the rule that matched."""
    runner = CliRunner()
    runner.invoke(cli, ["--config", config, "send"])  # registers the subscribers
    assert runner.invoke(cli, ["--config", config, "collect"]).exit_code == 0
    result = runner.invoke(cli, ["--config", config, "preview", "analyst@example.org"])
    assert result.exit_code == 0, result.output
    assert "2024-12-06-tashkent-workshop: field policing; country" in result.stderr
    assert "Региональный семинар ОБСЕ" in result.stdout
    eml = runner.invoke(
        cli, ["--config", config, "preview", "analyst@example.org", "--format", "eml"]
    )
    message = email.message_from_string(eml.stdout, policy=email.policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["To"] == "analyst@example.org"


def test_preview_of_a_digest_names_its_send_time(config: str) -> None:
    """A daily subscriber's digest is previewed at their next local send time."""
    runner = CliRunner()
    runner.invoke(cli, ["--config", config, "send"])
    runner.invoke(cli, ["--config", config, "collect"])
    result = runner.invoke(
        cli,
        [
            "--config",
            config,
            "preview",
            "desk@example.org",
            "--format",
            "html",
            "--at",
            "2099-01-05T07:00",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sent 2099-01-05T07:30:00+01:00" in result.stderr
    assert "<html" in result.stdout


def test_a_digest_holds_nothing_older_than_the_outbox_remembers(config: str) -> None:
    """With the default memory of 30 days, a digest sent in 2099 holds none of today's items."""
    runner = CliRunner()
    runner.invoke(cli, ["--config", config, "send"])
    runner.invoke(cli, ["--config", config, "collect"])
    path = Path(config)
    path.write_text(path.read_text(encoding="utf-8").replace('keep = "36500d"', ""), "utf-8")
    result = runner.invoke(
        cli, ["--config", config, "preview", "desk@example.org", "--at", "2099-01-05T07:00"]
    )
    assert result.exit_code == 0, result.output
    assert "No message due" in result.stderr
    assert "within the 30 days the outbox remembers" in result.stderr


@pytest.mark.parametrize(
    ("at", "sent"),
    [
        # 07:45 in Vienna, given in UTC as `publisher run`'s clock has it. The day before
        # clocks go back (25 October 2099) has 25 hours; the day before they go forward
        # (29 March 2099) has 23.
        ("2099-10-24T05:45+00:00", "sent 2099-10-25T07:30:00+01:00"),
        ("2099-03-28T06:45+00:00", "sent 2099-03-29T07:30:00+02:00"),
    ],
    ids=["25-hour day", "23-hour day"],
)
def test_preview_names_the_next_send_time_across_daylight_saving(
    config: str, at: str, sent: str
) -> None:
    """Just after one send time, the next is the next local 07:30, whatever the day's length."""
    runner = CliRunner()
    runner.invoke(cli, ["--config", config, "send"])
    runner.invoke(cli, ["--config", config, "collect"])
    result = runner.invoke(
        cli, ["--config", config, "preview", "desk@example.org", "--format", "text", "--at", at]
    )
    assert result.exit_code == 0, result.output
    assert sent in result.stderr


def test_preview_of_an_unknown_address_fails(config: str) -> None:
    """An address not in subscriptions.yaml is an error that names the file."""
    result = CliRunner().invoke(cli, ["--config", config, "preview", "who@example.org"])
    assert result.exit_code == 1
    assert "who@example.org is not in" in result.output
