"""Editing ``subscriptions.yaml`` in place: add, remove and change one subscriber.

Administrators write this file by hand, with comments, blank lines and a layout of
their own, so an edit changes only the lines it must and leaves every other byte as it
was. The functions here work on text: they compose the YAML with PyYAML (the loader's
parser, so lines and columns agree with its messages), find the lines of an entry from
the positions of its nodes, and splice lines in or out. New lines copy the style of the
entries already there: indentation, flow or block lists, quotes, blank lines between
entries.

Why not load and dump the whole document with a round-trip library (ruamel.yaml): its
dump re-indents every line to one style and drops spaces aligned by hand, and deleting
an entry takes along the comment above the *next* entry, because it attaches a comment
to the node before it. Here a comment belongs to the entry it stands directly above
(no blank line between), or to the entry above it when it is indented under that
entry's keys.

Whether an edited text is valid is not decided here: callers read it with
``parse_subscriptions`` before they hand it to :func:`write_atomically`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import ScalarNode, SequenceNode

from publisher.errors import PublisherError
from publisher.subscriptions._document import SUBSCRIBER_KEYS
from publisher.subscriptions._layout import (
    Document,
    Edit,
    EditRefused,
    Value,
    node_at,
    rule_keys,
)
from publisher.subscriptions._nodes import is_null, quote
from publisher.subscriptions._values import WEEKDAYS
from publisher.subscriptions.model import Rule

__all__ = [
    "ENTRY_KEYS",
    "EditRefused",
    "Location",
    "Value",
    "WriteFailed",
    "add_subscriber",
    "locate",
    "parse_value",
    "remove_subscriber",
    "rule_as_written",
    "set_keys",
    "write_atomically",
]

ENTRY_KEYS = SUBSCRIBER_KEYS  # the keys a subscriber's own entry may have


class WriteFailed(PublisherError):
    """The file could not be replaced; it is as it was."""


# -- the edits ------------------------------------------------------------------------


def add_subscriber(text: str, entry: Mapping[str, Value]) -> str:
    """``text`` with a new entry at the end of ``subscribers:``, in the file's style.

    ``entry`` maps keys to values in the order to write them; ``email`` comes first.
    Refused when the address is in the file already, in a group or as a subscriber.
    """
    email = entry.get("email")
    if not isinstance(email, str) or not email.strip():
        raise EditRefused("a new entry needs an email address")
    doc = Document(text)
    if (found := doc.find(email)) is not None:
        where = f"in group {quote(found.group_name or '')}" if found.entry is None else "here"
        raise EditRefused(
            f"{quote(email)} is already {where} (addresses are compared without regard to "
            "case); expected an address not yet in the file",
            **found.at(),
        )
    style = doc.style()
    others = {key: value for key, value in entry.items() if key != "email"}
    lines = style.entry_lines({"email": email.strip(), **others})
    section = doc.sections.get("subscribers")
    if section is None:  # no subscribers: section yet: start one at the end of the file
        return doc.append(
            ["", "subscribers:", *lines] if text.strip() else ["subscribers:", *lines]
        )
    key, seq = section
    if isinstance(seq, SequenceNode) and not seq.flow_style and seq.value:
        last = doc.items(seq, key)[-1]
        return doc.apply([doc.insert_after(last.end, ([""] if style.separated else []) + lines)])
    if is_null(seq) or (isinstance(seq, SequenceNode) and not seq.value):
        return doc.apply([doc.empty_value(key, seq), doc.insert_after(key.end_mark.line, lines)])
    raise EditRefused(
        "subscribers: is not a block list of entries (one '- email: …' per entry); "
        "add this one by hand",
        **node_at(seq),
    )


def remove_subscriber(text: str, email: str) -> str:
    """``text`` without ``email``: its entry with its own comments, or its line in a group.

    The comments of the neighbours stay, and so does one run of the blank lines that
    separated the entry from them.
    """
    doc = Document(text)
    found = doc.find(email)
    if found is None:
        raise doc.not_found(email)
    if found.seq.flow_style:  # [a@example.org, b@example.org]: write the list again
        kept = [doc.source(node) for i, node in enumerate(found.seq.value) if i != found.index]
        return doc.apply([doc.replace(found.seq, f"[{', '.join(kept)}]")])
    items = doc.items(found.seq, found.key)
    item = items[found.index]
    first, end = item.first, item.end
    if len(items) == 1:  # the list is left empty: say so, rather than leave `emails:` bare
        at = doc.offset((found.key.end_mark.line, doc.colon(found.key) + 1))
        return doc.apply([doc.remove_lines(first, end), (at, at, " []")])
    if found.index + 1 < len(items) and doc.all_blank(end + 1, items[found.index + 1].first):
        end = items[found.index + 1].first - 1
    elif found.index > 0 and doc.all_blank(items[found.index - 1].end + 1, first):
        first = items[found.index - 1].end + 1
    return doc.apply([doc.remove_lines(first, end)])


def set_keys(text: str, email: str, changes: Mapping[str, Value | None]) -> str:
    """``text`` with keys of ``email``'s own entry changed, added (at the end of the entry)
    or, where the value is None, removed. Refused for an address in a group: its rule is
    the group's."""
    doc = Document(text)
    found = doc.find(email)
    if found is None:
        raise doc.not_found(email)
    entry = found.entry
    if entry is None:
        group_line = found.group.start_mark.line + 1 if found.group else "?"
        raise EditRefused(
            f"{quote(email)} is in group {quote(found.group_name or '')}, whose rule it "
            f"follows; edit the group (line {group_line}), or remove the address from the "
            "group and add it as a subscriber",
            **found.at(),
        )
    if entry.flow_style:
        raise EditRefused(
            "this entry is written as a flow mapping {…}; edit it by hand", **node_at(entry)
        )
    style = doc.style()
    pairs = {k.value: (k, v) for k, v in reversed(entry.value) if isinstance(k, ScalarNode)}
    dash_line = doc.dash(entry)[0]
    edits: list[Edit] = []
    added: list[str] = []
    for name, value in changes.items():
        if name not in pairs:
            if value is not None:
                added.extend(style.pair_lines(name, value, entry.start_mark.column))
            continue
        key, node = pairs[name]
        if value is not None:
            edits.append(doc.replace_value(key, node, style, value))
        elif name == "email":
            raise EditRefused("the email key cannot be removed; remove the subscriber instead")
        elif key.start_mark.line == dash_line:
            raise EditRefused(
                f"{name} is the entry's first key, on its '-' line; edit it by hand", **node_at(key)
            )
        else:
            edits.append(doc.remove_pair(key, node))
    if added:
        edits.append(doc.insert_after(doc.end(entry)[0], added))
    return doc.apply(edits)


def parse_value(text: str) -> Value | None:
    """A value typed after ``KEY=``: a scalar or a flow list; empty, ``~`` or ``null``: None.

    Scalars keep their text as typed (``09:00`` stays ``09:00``, as the loader reads it).
    """
    if not text.strip():
        return None
    try:
        node = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not YAML"
        raise EditRefused(f"{quote(text)} is not a YAML value ({problem})") from exc
    if node is None or is_null(node):
        return None
    if isinstance(node, ScalarNode):
        return str(node.value)
    if isinstance(node, SequenceNode) and all(isinstance(i, ScalarNode) for i in node.value):
        return tuple(str(item.value) for item in node.value)
    raise EditRefused(
        f"{quote(text)}: expected one value such as weekly, or a list such as [UZ, KZ]"
    )


@dataclass(frozen=True, slots=True)
class Location:
    """Where an address is written, and which rule keys are written for it."""

    line: int  # 1-based line of the address
    group: str | None  # the group's name when the address is a group's
    keys: tuple[str, ...]  # rule keys its entry (or its group) writes
    defaults: tuple[str, ...]  # rule keys `defaults` writes


def locate(text: str, email: str) -> Location:
    """Where ``email`` stands in ``text``; EditRefused (with a close address) if nowhere."""
    doc = Document(text)
    found = doc.find(email)
    if found is None:
        raise doc.not_found(email)
    rule_of = found.entry if found.entry is not None else found.group
    defaults = doc.sections.get("defaults", (None, None))[1]
    return Location(
        line=found.address.start_mark.line + 1,
        group=found.group_name,
        keys=rule_keys(rule_of),
        defaults=rule_keys(defaults),
    )


def rule_as_written(rule: Rule) -> dict[str, str | list[str]]:
    """A rule's values spelled as the file spells them, so they can be written back."""
    return {
        "locale": rule.locale,
        "fallback_locales": list(rule.fallback_locales),
        "timezone": rule.timezone,
        "frequency": str(rule.frequency),
        "send_at": f"{rule.send_at.hour:02d}:{rule.send_at.minute:02d}",
        "weekday": WEEKDAYS[rule.weekday],
        "format": str(rule.format),
        "fields_of_work": sorted(rule.fields_of_work),
        "countries": list(rule.countries_as_written),
        "exclude_fields_of_work": sorted(rule.exclude_fields_of_work),
        "exclude_countries": sorted(rule.exclude_countries),
    }


def write_atomically(
    path: Path, text: str, *, write: Callable[[int, memoryview], int] = os.write
) -> None:
    """Replace the file at ``path`` with ``text``: all of it, or on any failure none of it.

    The text goes to a temporary file in the same directory (a rename is atomic only
    within one file system), reaches the disk (fsync), takes the old file's mode and,
    where we may, its owner, and then replaces the old file in one rename; the directory
    is synced so that the rename survives a crash. A symbolic link is followed: the file
    it names is replaced. ``write`` is the low-level writer (tests pass a failing one).
    """
    target = path.resolve()
    data = memoryview(text.encode("utf-8"))
    try:
        old = target.stat()
    except OSError as exc:
        raise WriteFailed(f"{path}: cannot read the file's mode: {exc.strerror or exc}") from exc
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        try:
            while data:
                written = write(fd, data)
                if written <= 0:
                    raise OSError(errno.EIO, "the disk took no more bytes")
                data = data[written:]
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
            with contextlib.suppress(PermissionError):  # only root may give a file away
                os.fchown(fd, old.st_uid, old.st_gid)
            os.fsync(fd)
        finally:
            os.close(fd)
        Path(temporary).replace(target)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise WriteFailed(
                f"{path}: cannot write the file ({exc.strerror or exc}); it is unchanged"
            ) from exc
        raise
    with contextlib.suppress(OSError):  # the new file is in place; this only makes it durable
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
