from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.cli import cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample deployment, run from an unrelated current directory."""
    for name in ("publisher.toml", "subscriptions.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "content", tmp_path / "content")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for variable in ("PUBLISHER_CONFIG", "PUBLISHER_DATABASE_URL", "PUBLISHER_SUBSCRIPTIONS"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def test_collect_prints_a_table_per_source_and_stores_under_var(workdir: Path) -> None:
    """`publisher collect` fills var/publisher.db beside publisher.toml, then finds it unchanged."""
    runner = CliRunner()
    config = str(workdir / "publisher.toml")
    first = runner.invoke(cli, ["--config", config, "collect"])
    assert first.exit_code == 0, first.output
    assert "newsroom" in first.output and "unchanged" in first.output
    assert (workdir / "var" / "publisher.db").is_file()
    second = runner.invoke(cli, ["--config", config, "collect"])
    assert second.exit_code == 0, second.output
    row = next(line for line in second.output.splitlines() if "newsroom" in line)
    assert row.split("│")[2].strip() == "0"  # new


def test_collect_names_an_unknown_source(workdir: Path) -> None:
    """--source with a name not in publisher.toml is a usage error listing the known ones."""
    result = CliRunner().invoke(
        cli, ["--config", str(workdir / "publisher.toml"), "collect", "--source", "nope"]
    )
    assert result.exit_code == 2
    assert "unknown source nope; configured: newsroom" in result.output


def test_check_passes_on_the_shipped_subscriptions(workdir: Path) -> None:
    """The sample subscriptions.yaml and publisher.toml pass `publisher check`."""
    result = CliRunner().invoke(cli, ["--config", str(workdir / "publisher.toml"), "check"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_check_prints_one_line_per_problem_and_exits_1(workdir: Path) -> None:
    """A broken file gives path:line:column lines on stdout and exit status 1."""
    broken = workdir / "broken.yaml"
    broken.write_text(
        "subscribers:\n"
        "  - email: a@example.org\n"
        "    fields_of_work: [polcing]\n"
        "  - email: not-an-address\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["--config", str(workdir / "publisher.toml"), "check", str(broken)]
    )
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{broken}:3:22: ")
    assert "did you mean 'policing'" in lines[0]
    assert lines[1].startswith(f"{broken}:4:12: ")


def test_check_reports_broken_settings_too(workdir: Path) -> None:
    """A wrong publisher.toml is reported with its line, next to the subscriptions' problems."""
    config = workdir / "publisher.toml"
    config.write_text(config.read_text().replace("port = 25", 'port = "smtp"'))
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{config}:") and "smtp.port = 'smtp': expected an integer" in line
