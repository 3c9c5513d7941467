"""Editing subscriptions.yaml as text: exactly the intended lines change, in the file's style."""

from __future__ import annotations

import difflib
import errno
import os
import stat
import textwrap
from pathlib import Path

import pytest

from publisher.subscriptions import Subscriptions, parse_subscriptions
from publisher.subscriptions.editing import (
    EditRefused,
    WriteFailed,
    add_subscriber,
    locate,
    parse_value,
    remove_subscriber,
    rule_as_written,
    set_keys,
    write_atomically,
)
from publisher.taxonomy import Taxonomy, load_taxonomy

REPO = Path(__file__).resolve().parents[2]
SAMPLE = (REPO / "subscriptions.yaml").read_text(encoding="utf-8")
LOCALES = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def valid(text: str, taxonomy: Taxonomy) -> Subscriptions:
    return parse_subscriptions(text, path="subscriptions.yaml", taxonomy=taxonomy, locales=LOCALES)


def changes(old: str, new: str) -> list[tuple[str, list[str], list[str]]]:
    """What differs, as (operation, old lines, new lines); equal runs left out."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [
        (op, a[i1:i2], b[j1:j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"
    ]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# -- add ----------------------------------------------------------------------------------


def test_add_appends_one_entry_in_the_samples_style(taxonomy: Taxonomy) -> None:
    """add on the sample inserts only the new entry, after a blank line, with flow lists and
    send_at quoted as the sample writes them; the result loads with the rule asked for."""
    entry = {
        "email": "new@example.org",
        "name": "New Person",
        "locale": "ru",
        "fallback_locales": ("en",),
        "fields_of_work": ("policing", "elections"),
        "send_at": "09:00",
    }
    new = add_subscriber(SAMPLE, entry)
    assert changes(SAMPLE, new) == [
        (
            "insert",
            [],
            [
                "\n",
                "  - email: new@example.org\n",
                "    name: New Person\n",
                "    locale: ru\n",
                "    fallback_locales: [en]\n",
                "    fields_of_work: [policing, elections]\n",
                '    send_at: "09:00"\n',
            ],
        )
    ]
    assert new.startswith(SAMPLE)
    subscriber = valid(new, taxonomy).get("new@example.org")
    assert subscriber is not None and subscriber.rule.fields_of_work == {"policing", "elections"}
    assert subscriber.rule.timezone == "Europe/Vienna"  # from defaults: not written


def test_add_copies_a_block_style_file() -> None:
    """In a file with unindented items, block lists and single quotes, the new entry is alike."""
    text = dedent("""
        subscribers:
        - email: a@example.org
          countries:
          - UZ
          send_at: '07:00'
        """)
    new = add_subscriber(
        text, {"email": "b@example.org", "countries": ("UZ", "KZ"), "send_at": "9:15"}
    )
    assert new == text + dedent("""
        - email: b@example.org
          countries:
          - UZ
          - KZ
          send_at: '9:15'
        """)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("defaults:\n  locale: en\n", "defaults:\n  locale: en\n\nsubscribers:\n"),
        ("subscribers:   # nobody yet\n", "subscribers:   # nobody yet\n"),
        ("subscribers: []\n# end\n", "subscribers:\n"),
        ("", "subscribers:\n"),
    ],
    ids=["no-section", "null-with-comment", "empty-flow-list", "empty-file"],
)
def test_add_starts_the_list_where_there_is_none(text: str, expected: str) -> None:
    """Without entries yet, add opens subscribers: (keeping its comment) with the first one."""
    new = add_subscriber(text, {"email": "a@example.org"})
    assert new.startswith(expected)
    assert "  - email: a@example.org\n" in new
    assert new.endswith("# end\n") == text.endswith("# end\n")


def test_add_quotes_only_what_would_not_read_back(taxonomy: Taxonomy) -> None:
    """A name with ': ' or ' #' is double-quoted; plain text stays plain; both load as typed."""
    text = "subscribers:\n  - email: a@example.org\n"
    for name, written in [
        ("Desk: Europe #2", '"Desk: Europe #2"'),
        ("O'Brien, Aoife", "O'Brien, Aoife"),
        ("null", '"null"'),
    ]:
        new = add_subscriber(text, {"email": "b@example.org", "name": name})
        assert new == f"{text}  - email: b@example.org\n    name: {written}\n"
        assert valid(new, taxonomy).subscribers[1].name == name


def test_add_refuses_an_address_already_in_a_group() -> None:
    """An address already in a group, in another case, is refused at the line and column
    where it is written."""
    with pytest.raises(EditRefused) as refused:
        add_subscriber(SAMPLE, {"email": "Editor@Example.org"})
    assert (refused.value.line, refused.value.column) == (45, 32)
    assert "already in group 'press-desk'" in refused.value.message


# -- remove -------------------------------------------------------------------------------


def test_remove_takes_the_entry_its_comment_and_one_blank_line(taxonomy: Taxonomy) -> None:
    """Removing a middle entry of the sample deletes its comment, its lines and the blank line
    after it; the comments of the entries around it stay."""
    new = remove_subscriber(SAMPLE, "newsroom@example.com")
    entry = (
        "  # Everything, once a day at the defaults' hour: only the address is needed.\n"
        "  - email: newsroom@example.com\n"
        "    name: Newsroom archive\n"
        "\n"
    )
    assert SAMPLE.count(entry) == 1
    assert new == SAMPLE.replace(entry, "")
    assert valid(new, taxonomy).get("newsroom@example.com") is None


def test_remove_the_first_and_the_last_entries() -> None:
    """The first entry goes with the blank line after it, the last with the blank line before
    it, so the list stays laid out as it was."""
    first = remove_subscriber(SAMPLE, "analyst@example.org")
    assert "subscribers:\n  # Everything, once a day" in first
    last = remove_subscriber(SAMPLE, "pravozashchita@example.org")
    assert last.endswith("    frequency: immediate\n    format: text\n")
    assert SAMPLE.startswith(last)


def test_remove_leaves_the_comments_of_neighbours() -> None:
    """A comment indented under the entry above stays with it, and a comment standing apart
    (blank lines around it) stays; only the removed entry's own comment goes."""
    text = dedent("""
        subscribers:
          - email: a@example.org
            locale: fr
            # a's note, under a's keys

          # --- the desk ---

          # b's own comment
          - email: b@example.org
            locale: de

          - email: c@example.org
        """)
    assert remove_subscriber(text, "b@example.org") == dedent("""
        subscribers:
          - email: a@example.org
            locale: fr
            # a's note, under a's keys

          # --- the desk ---

          - email: c@example.org
        """)


def test_a_comment_right_above_an_entry_is_that_entrys() -> None:
    """A comment at the '-' column between two entries, with no blank line, belongs to the
    entry below it: removing the entry above keeps it."""
    text = dedent("""
        subscribers:
          - email: a@example.org
          # b's comment
          - email: b@example.org
        """)
    assert remove_subscriber(text, "a@example.org") == dedent("""
        subscribers:
          # b's comment
          - email: b@example.org
        """)
    assert remove_subscriber(text, "b@example.org") == "subscribers:\n  - email: a@example.org\n"


def test_remove_the_only_entry_leaves_an_empty_list(taxonomy: Taxonomy) -> None:
    """With its last entry gone, subscribers: says [] rather than nothing."""
    text = "# who\nsubscribers:\n  # the only one\n  - email: a@example.org\n    locale: fr\n"
    new = remove_subscriber(text, "a@example.org")
    assert new == "# who\nsubscribers: []\n"
    assert valid(new, taxonomy).subscribers == ()


def test_remove_from_a_groups_flow_and_block_lists(taxonomy: Taxonomy) -> None:
    """A group's address is taken out of its list, flow or block, and nothing else changes."""
    flow = remove_subscriber(SAMPLE, "editor@example.org")
    assert changes(SAMPLE, flow) == [
        (
            "replace",
            ["    emails: [desk@example.org, editor@example.org]\n"],
            ["    emails: [desk@example.org]\n"],
        )
    ]
    block = remove_subscriber(SAMPLE, "balkans.team@example.net")
    assert changes(SAMPLE, block) == [("delete", ["      - balkans.team@example.net\n"], [])]
    assert valid(block, taxonomy).get("field.office@example.net") is not None


def test_positions_are_counted_in_characters() -> None:
    """Columns after non-ASCII text on the same line are characters, as PyYAML counts them."""
    text = "groups:\n  - name: ук\n    emails: [олена@приклад.укр, b@example.org, c@example.org]\n"
    new = remove_subscriber(text, "b@example.org")
    assert new == "groups:\n  - name: ук\n    emails: [олена@приклад.укр, c@example.org]\n"


# -- set ----------------------------------------------------------------------------------


def test_set_changes_one_line_and_keeps_its_comment_in_place(taxonomy: Taxonomy) -> None:
    """A shorter value keeps the comment after it in its column; no other line changes."""
    new = set_keys(SAMPLE, "analyst@example.org", {"fields_of_work": ("policing",)})
    assert changes(SAMPLE, new) == [
        (
            "replace",
            ["    fields_of_work: [policing, cyber-ict-security]   # omitted or empty: all\n"],
            ["    fields_of_work: [policing]                       # omitted or empty: all\n"],
        )
    ]
    subscriber = valid(new, taxonomy).get("analyst@example.org")
    assert subscriber is not None and subscriber.rule.fields_of_work == {"policing"}


def test_set_adds_keys_at_the_end_of_the_entry_and_removes_keys() -> None:
    """A new key goes after the entry's last key (before the blank line); KEY= removes one."""
    new = set_keys(
        SAMPLE, "newsroom@example.com", {"name": None, "frequency": "weekly", "weekday": "friday"}
    )
    assert changes(SAMPLE, new) == [
        (
            "replace",
            ["    name: Newsroom archive\n"],
            ["    frequency: weekly\n", "    weekday: friday\n"],
        )
    ]


def test_set_rewrites_a_block_list_keeping_the_keys_comment() -> None:
    """A block list is written again in the file's list style, the key's comment kept."""
    text = dedent("""
        subscribers:
          - email: a@example.org
            countries:   # where a works
              - UZ
              - KZ
            locale: ru
        """)
    new = set_keys(text, "a@example.org", {"countries": ("TJ",)})
    assert new == text.replace("      - UZ\n      - KZ\n", "      - TJ\n")


def test_set_refuses_an_address_in_a_group() -> None:
    """A group member's rule is the group's: set is refused where the address is written."""
    with pytest.raises(EditRefused) as refused:
        set_keys(SAMPLE, "desk@example.org", {"frequency": "weekly"})
    assert (refused.value.line, refused.value.column) == (45, 14)
    assert "edit the group (line 44)" in refused.value.message


def test_an_unknown_address_is_refused_with_a_near_miss() -> None:
    """A misspelt address is refused, naming the address it is close to."""
    with pytest.raises(EditRefused, match=r"did you mean 'analyst@example\.org'"):
        set_keys(SAMPLE, "analist@example.org", {"locale": "en"})
    with pytest.raises(EditRefused) as refused:
        remove_subscriber(SAMPLE, "nobody@example.com")
    assert refused.value.message == "'nobody@example.com' is not in the file"


def test_set_refuses_to_remove_the_email() -> None:
    """email= would leave an entry without an address: refused."""
    with pytest.raises(EditRefused, match="remove the subscriber instead"):
        set_keys(SAMPLE, "analyst@example.org", {"email": None})


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("weekly", "weekly"),
        ("09:00", "09:00"),
        ("[UZ, central-asia]", ("UZ", "central-asia")),
        ("[]", ()),
        ('"~"', "~"),
        ("", None),
        ("~", None),
    ],
)
def test_parse_value_reads_what_is_typed_after_key_equals(typed: str, value: object) -> None:
    """KEY=VALUE takes a scalar's text as typed, a flow list, or nothing (remove the key)."""
    assert parse_value(typed) == value


@pytest.mark.parametrize("typed", ["{a: b}", "[UZ", "[[UZ]]"])
def test_parse_value_refuses_anything_else(typed: str) -> None:
    """A mapping, a nested list or broken YAML is not a value of a key."""
    with pytest.raises(EditRefused):
        parse_value(typed)


# -- the file as a whole ------------------------------------------------------------------


def test_line_breaks_and_a_missing_final_one_are_respected() -> None:
    """CRLF files get CRLF lines; a last line without a break gets one before new lines."""
    crlf = "subscribers:\r\n  - email: a@example.org\r\n\r\n  - email: b@example.org\r\n"
    added = add_subscriber(crlf, {"email": "c@example.org"})
    assert added == crlf + "\r\n  - email: c@example.org\r\n"
    assert (
        remove_subscriber(crlf, "a@example.org") == "subscribers:\r\n  - email: b@example.org\r\n"
    )
    unended = "subscribers:\n  - email: a@example.org"
    assert add_subscriber(unended, {"email": "b@example.org"}) == (
        "subscribers:\n  - email: a@example.org\n  - email: b@example.org\n"
    )


def test_rule_as_written_writes_back_to_the_same_rule(taxonomy: Taxonomy) -> None:
    """Each sample rule, spelt by rule_as_written and added as an entry, loads as that rule."""
    sample = valid(SAMPLE, taxonomy)
    text = "regions:\n  black-sea: [BG, GE, MD, RO, TR, UA]\nsubscribers: []\n"
    for index, subscriber in enumerate(sample.subscribers):
        written = rule_as_written(subscriber.rule)
        entry = {k: tuple(v) if isinstance(v, list) else v for k, v in written.items()}
        text = add_subscriber(text, {"email": f"copy{index}@example.org", **entry})
    copies = valid(text, taxonomy).subscribers
    assert [c.rule for c in copies] == [s.rule for s in sample.subscribers]


def test_locate_says_where_and_which_keys_are_written() -> None:
    """locate gives the address's line, its group, and the rule keys its entry writes."""
    member = locate(SAMPLE, "EDITOR@example.org")
    assert (member.line, member.group) == (45, "press-desk")
    assert member.keys == ("fields_of_work", "frequency")
    own = locate(SAMPLE, "newsroom@example.com")
    assert (own.line, own.group, own.keys) == (74, None, ())
    assert "send_at" in own.defaults


# -- write_atomically ---------------------------------------------------------------------


def test_write_atomically_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    """The new text replaces the file, which keeps its mode; no temporary file is left."""
    path = tmp_path / "subscriptions.yaml"
    path.write_text("old\n", encoding="utf-8")
    path.chmod(0o640)
    write_atomically(path, "новый\n")
    assert path.read_text(encoding="utf-8") == "новый\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["subscriptions.yaml"]


def test_write_atomically_leaves_everything_as_it_was_when_a_write_fails(tmp_path: Path) -> None:
    """A disk that fills up half-way leaves the old file whole and no temporary file.

    (The failure is injected: the tests run as root, whom a read-only directory does not stop.)
    """
    path = tmp_path / "subscriptions.yaml"
    path.write_bytes(b"old\n")
    calls = []

    def fill_up(fd: int, data: memoryview) -> int:
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data[:3])

    with pytest.raises(WriteFailed, match="No space left on device"):
        write_atomically(path, "a longer new text\n", write=fill_up)
    assert len(calls) == 2
    assert path.read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["subscriptions.yaml"]


def test_write_atomically_cleans_up_when_the_rename_fails(tmp_path: Path) -> None:
    """A rename the system refuses (onto a directory) leaves no temporary file behind."""
    target = tmp_path / "subscriptions.yaml"
    target.mkdir()
    with pytest.raises(WriteFailed, match="it is unchanged"):
        write_atomically(target, "text\n")
    assert os.listdir(tmp_path) == ["subscriptions.yaml"]
    assert target.is_dir()


def test_write_atomically_follows_a_symbolic_link(tmp_path: Path) -> None:
    """Through a symbolic link, the file it names is replaced and the link stays a link."""
    real = tmp_path / "real.yaml"
    real.write_text("old\n", encoding="utf-8")
    link = tmp_path / "subscriptions.yaml"
    link.symlink_to(real)
    write_atomically(link, "new\n")
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8") == "new\n"
