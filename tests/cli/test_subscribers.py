"""`publisher subscribers`: edits of a copy of the shipped sample, through the command line."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from publisher.cli import cli
from publisher.subscriptions import Subscriptions, load_subscriptions
from publisher.subscriptions.editing import rule_as_written
from publisher.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parents[2]
LOCALES = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]
OLD = 1_000_000_000_000_000_000  # an mtime (ns) no write of this test run can give


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample deployment, run from an unrelated current directory."""
    for name in ("publisher.toml", "subscriptions.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for variable in ("PUBLISHER_CONFIG", "PUBLISHER_SUBSCRIPTIONS"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def run(workdir: Path, *args: str) -> Result:
    config = str(workdir / "publisher.toml")
    return CliRunner().invoke(cli, ["--config", config, "subscribers", *args])


def load(path: Path) -> Subscriptions:
    return load_subscriptions(path, taxonomy=load_taxonomy(), locales=LOCALES)


def diff(old: str, new: str) -> tuple[list[str], list[str]]:
    """The lines only in ``old`` and the lines only in ``new``, by difflib."""
    lines = list(difflib.ndiff(old.splitlines(keepends=True), new.splitlines(keepends=True)))
    return [x[2:] for x in lines if x[0] == "-"], [x[2:] for x in lines if x[0] == "+"]


def comments(text: str) -> list[str]:
    """Every comment, from its '#' to the end of its line (the sample has no other '#')."""
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


def test_add_inserts_only_the_new_entry(workdir: Path) -> None:
    """add changes no line of the sample: it inserts the entry at the end of subscribers:,
    keeps every comment and the file's mode, replaces the file in one rename (a new inode,
    so a reader never sees half a file), leaves no temporary file, and the file loads."""
    path = workdir / "subscriptions.yaml"
    path.chmod(0o600)
    inode = path.stat().st_ino
    before = path.read_text(encoding="utf-8")
    result = run(
        workdir, "add", "new@example.org", "--name", "Nouvelle",
        "--locale", "fr", "--fallback-locale", "en", "--timezone", "Europe/Paris",
        "--field", "elections", "--field", "policing", "--country", "central-asia",
        "--frequency", "weekly", "--weekday", "thursday", "--send-at", "09:00",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    after = path.read_text(encoding="utf-8")
    removed, added = diff(before, after)
    assert removed == []
    assert added == [
        "\n",
        "  - email: new@example.org\n",
        "    name: Nouvelle\n",
        "    locale: fr\n",
        "    fallback_locales: [en]\n",
        "    timezone: Europe/Paris\n",
        "    fields_of_work: [elections, policing]\n",
        "    countries: [central-asia]\n",
        "    frequency: weekly\n",
        "    weekday: thursday\n",
        '    send_at: "09:00"\n',
    ]
    assert after.startswith(before)
    assert comments(after) == comments(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode
    assert sorted(os.listdir(workdir)) == ["elsewhere", "publisher.toml", "subscriptions.yaml"]
    new = load(path).get("new@example.org")
    assert new is not None and new.rule.weekday == 3 and new.name == "Nouvelle"
    assert "line 164" in result.output


def test_remove_deletes_only_the_entry_and_its_own_comment(workdir: Path) -> None:
    """remove deletes the entry's lines, the comment line above it and one blank line; the
    comments of the entries around it survive and the file loads without it."""
    path = workdir / "subscriptions.yaml"
    before = path.read_text(encoding="utf-8")
    result = run(workdir, "remove", "observatrice@example.org")
    assert result.exit_code == 0, result.output
    after = path.read_text(encoding="utf-8")
    removed, added = diff(before, after)
    assert added == []
    assert [line.strip() for line in removed if line.strip()] == [
        "# A weekly French digest on Friday afternoon, plain text.",
        "- email: observatrice@example.org",
        "name: Claire Martin",
        "locale: fr",
        "fallback_locales: [en]",
        "timezone: Europe/Paris",
        "fields_of_work: [elections, human-rights, gender-equality]",
        "frequency: weekly",
        "weekday: friday",
        'send_at: "16:00"',
        "format: text",
    ]
    assert removed.count("\n") == 1
    gone = "# A weekly French digest on Friday afternoon, plain text."
    assert gone in comments(before)
    assert comments(after) == [c for c in comments(before) if c != gone]
    loaded = load(path)
    assert loaded.get("observatrice@example.org") is None
    assert len(loaded.subscribers) == len(load(REPO / "subscriptions.yaml").subscribers) - 1


def test_set_changes_only_the_lines_of_the_keys_set(workdir: Path) -> None:
    """set rewrites the value of each key given on its own line, comments kept, and the
    new values are what the loader reads."""
    path = workdir / "subscriptions.yaml"
    before = path.read_text(encoding="utf-8")
    result = run(
        workdir, "set", "analyst@example.org", "frequency=daily", "send_at=07:15",
        "countries=[KZ, UZ]", "exclude_countries=",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    after = path.read_text(encoding="utf-8")
    removed, added = diff(before, after)
    assert removed == [
        "    countries: [UZ, central-asia]                    # omitted or empty: all\n",
        "    exclude_countries: []\n",
        "    frequency: immediate\n",
    ]
    assert added == [
        "    countries: [KZ, UZ]                              # omitted or empty: all\n",
        "    frequency: daily\n",
        '    send_at: "07:15"\n',
    ]
    assert comments(after) == comments(before)
    rule = load(path).get("analyst@example.org")
    assert rule is not None
    assert rule.rule.countries == {"KZ", "UZ"} and str(rule.rule.send_at) == "07:15:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "x@example.org", "--field", "polcing"], ":22: unknown field of work 'polcing'"),
        (["add", "x@example.org", "--timezone", "Europe/Viena"], "did you mean 'Europe/Vienna'"),
        (["add", "Editor@example.org"], ":45:32: 'Editor@example.org' is already in group"),
        (["set", "desk@example.org", "frequency=weekly"], ":45:14: 'desk@example.org' is in group"),
        (["set", "monitor@example.net", "countries=[UA, Narnia]"], "unknown country"),
        (["remove", "nobody@example.org"], "'nobody@example.org' is not in the file"),
    ],
    ids=["unknown-field", "bad-time-zone", "duplicate", "set-in-group", "bad-country", "unknown"],
)
def test_a_refused_edit_leaves_the_file_untouched(
    workdir: Path, args: list[str], message: str
) -> None:
    """A refused edit exits 1, prints the problem at its line and column, and leaves the
    file's bytes, inode and mtime as they were, with no temporary file beside it."""
    path = workdir / "subscriptions.yaml"
    os.utime(path, ns=(OLD, OLD))
    before = path.read_bytes()
    inode = path.stat().st_ino
    result = run(workdir, *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    if ":" in message.split()[0]:  # the problem is located: path:line:column: message
        assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: ", result.stdout, re.MULTILINE)
    assert path.read_bytes() == before
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (inode, OLD)
    assert sorted(os.listdir(workdir)) == ["elsewhere", "publisher.toml", "subscriptions.yaml"]


def test_a_refused_add_shows_the_line_it_would_have_written(workdir: Path) -> None:
    """The loader's problem names a line of the edited text, so that line is shown too."""
    result = run(workdir, "add", "x@example.org", "--field", "polcing")
    path = workdir / "subscriptions.yaml"
    assert result.stdout.startswith(f"{path}:165:22: unknown field of work 'polcing'")
    assert "165 |     fields_of_work: [polcing]" in result.stderr


def test_list_json_matches_the_loader(workdir: Path) -> None:
    """list --json gives every subscriber the loader reads, groups expanded, in its order,
    with the rule in force."""
    result = run(workdir, "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    loaded = load(workdir / "subscriptions.yaml").subscribers
    assert [row["email"] for row in rows] == [s.email for s in loaded]
    for row, subscriber in zip(rows, loaded, strict=True):
        assert (row["name"], row["group"], row["line"]) == (
            subscriber.name,
            subscriber.group,
            subscriber.line,
        )
        assert {k: row[k] for k in rule_as_written(subscriber.rule)} == rule_as_written(
            subscriber.rule
        )
        assert row["country_codes"] == sorted(subscriber.rule.countries)
    balkans = next(row for row in rows if row["email"] == "field.office@example.net")
    assert (balkans["group"], balkans["send_at"]) == ("balkans-team", "07:30")


def test_list_prints_a_row_per_subscriber(workdir: Path) -> None:
    """The human table has every address, the group members' with their group."""
    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        cli, ["--config", str(workdir / "publisher.toml"), "subscribers", "list"]
    )
    assert result.exit_code == 0, result.output
    desk = next(line for line in result.stdout.splitlines() if "desk@example.org" in line)
    assert "press-desk" in desk and "immediate" in desk
    assert "15 subscribers" in result.stdout


def test_show_says_where_the_rule_comes_from(workdir: Path) -> None:
    """show gives the line of the address, its group, and which keys come from the group,
    from defaults, or from nowhere (built in)."""
    result = run(workdir, "show", "EDITOR@example.org", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["email"], shown["line"], shown["group"]) == (
        "editor@example.org",
        45,
        "press-desk",
    )
    assert shown["from"]["frequency"] == "group 'press-desk'"
    assert shown["from"]["timezone"] == "defaults"
    assert shown["from"]["countries"] == "built-in"
    text = run(workdir, "show", "analyst@example.org")
    assert text.exit_code == 0, text.output
    assert "line 62." in text.stdout
    assert "UZ, central-asia = KG, KZ, TJ, TM, UZ" in text.stdout


def test_show_an_unknown_address_exits_1_with_a_near_miss(workdir: Path) -> None:
    """A misspelt address is not found: exit 1, naming the close one."""
    result = run(workdir, "show", "analist@example.org")
    assert result.exit_code == 1
    assert "'analist@example.org' is not in the file; did you mean 'analyst@example.org'?" in (
        result.stderr
    )


def test_file_option_edits_that_file_only(workdir: Path) -> None:
    """--file PATH edits PATH; the file named in the settings is not touched."""
    other = workdir / "other.yaml"
    other.write_text("subscribers:\n  - email: a@example.org\n", encoding="utf-8")
    before = (workdir / "subscriptions.yaml").read_bytes()
    result = run(workdir, "add", "b@example.org", "--locale", "de", "--file", str(other))
    assert result.exit_code == 0, result.output
    assert other.read_text(encoding="utf-8") == (
        "subscribers:\n  - email: a@example.org\n  - email: b@example.org\n    locale: de\n"
    )
    assert (workdir / "subscriptions.yaml").read_bytes() == before


@pytest.mark.parametrize(
    "args",
    [
        ["set", "analyst@example.org", "frequency"],
        ["set", "analyst@example.org", "frequncy=weekly"],
        ["set", "analyst@example.org", "countries=[UZ"],
        ["set", "analyst@example.org"],
        ["add"],
    ],
    ids=["no-equals", "unknown-key", "broken-value", "no-assignment", "no-email"],
)
def test_usage_errors_exit_2_and_write_nothing(workdir: Path, args: list[str]) -> None:
    """A malformed command line is a usage error (exit 2), and the file is not written."""
    path = workdir / "subscriptions.yaml"
    before = path.read_bytes()
    result = run(workdir, *args)
    assert result.exit_code == 2, result.output
    assert path.read_bytes() == before


def test_a_file_broken_before_the_edit_is_reported_as_such(workdir: Path) -> None:
    """list on a broken file prints its problem and exits 1; an edit of it is refused and
    says the file had problems before the edit."""
    path = workdir / "subscriptions.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("timezone: Asia/Tashkent", "timezone: Mars"),
        encoding="utf-8",
    )
    before = path.read_bytes()
    listed = run(workdir, "list")
    assert listed.exit_code == 1
    assert f"{path}:66:15: unknown time zone 'Mars'" in listed.stdout
    added = run(workdir, "add", "x@example.org")
    assert added.exit_code == 1
    assert "had problems before this edit too" in added.stderr
    assert path.read_bytes() == before
