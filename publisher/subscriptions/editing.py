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
import difflib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher.errors import PublisherError
from publisher.subscriptions._document import SUBSCRIBER_KEYS
from publisher.subscriptions._nodes import is_null, quote
from publisher.subscriptions._rules import RULE_KEYS
from publisher.subscriptions._values import WEEKDAYS
from publisher.subscriptions.loader import _gc_paused
from publisher.subscriptions.model import Rule

Value = str | tuple[str, ...]  # a scalar's text as written, or a list of them
ENTRY_KEYS = SUBSCRIBER_KEYS  # the keys a subscriber's own entry may have

# PyYAML counts NEL, LS and PS as line breaks too (YAML 1.1); lines here must be its lines.
_BREAKS = "\r\n\x85\u2028\u2029"
_LINE = re.compile(r"[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029]|\Z)")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})  # what the loader reads as nothing
Position = tuple[int, int]  # 0-based line and column, in characters, as PyYAML's marks


class EditRefused(PublisherError):
    """The edit cannot be made as asked; the text stays as it was."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line  # 1-based, in the text that was to be edited
        self.column = column

    def located(self, path: str | Path) -> str:
        """``path:line:column: message``, the way the loader reports a problem."""
        if self.line is None:
            return f"{path}: {self.message}"
        return f"{path}:{self.line}:{self.column or 1}: {self.message}"


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
    doc = _Document(text)
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
        **_at(seq),
    )


def remove_subscriber(text: str, email: str) -> str:
    """``text`` without ``email``: its entry with its own comments, or its line in a group.

    The comments of the neighbours stay, and so does one run of the blank lines that
    separated the entry from them.
    """
    doc = _Document(text)
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
    doc = _Document(text)
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
            "this entry is written as a flow mapping {…}; edit it by hand", **_at(entry)
        )
    style = doc.style()
    pairs = {k.value: (k, v) for k, v in reversed(entry.value) if isinstance(k, ScalarNode)}
    dash_line = doc.dash(entry)[0]
    edits: list[_Edit] = []
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
                f"{name} is the entry's first key, on its '-' line; edit it by hand", **_at(key)
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
    doc = _Document(text)
    found = doc.find(email)
    if found is None:
        raise doc.not_found(email)
    rule_of = found.entry if found.entry is not None else found.group
    defaults = doc.sections.get("defaults", (None, None))[1]
    return Location(
        line=found.address.start_mark.line + 1,
        group=found.group_name,
        keys=_rule_keys(rule_of),
        defaults=_rule_keys(defaults),
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


# -- reading the file's layout --------------------------------------------------------

_Edit = tuple[int, int, str]  # replace text[start:end] with the string


@dataclass(frozen=True, slots=True)
class _Found:
    """An address in the file, and the list it is an item of."""

    address: ScalarNode
    key: ScalarNode  # the key of that list: subscribers, or a group's emails
    seq: SequenceNode
    index: int
    entry: MappingNode | None  # the subscriber's own entry; None for a group's address
    group: MappingNode | None
    group_name: str | None

    def at(self) -> dict[str, int]:
        return _at(self.address)


@dataclass(frozen=True, slots=True)
class _Item:
    """The lines of one item of a block list (0-based)."""

    column: int  # of its '-'
    first: int  # its own comment lines above the '-' line, or that line
    end: int  # its last line, or its own comment lines indented under it


def _at(node: Node) -> dict[str, int]:
    return {"line": node.start_mark.line + 1, "column": node.start_mark.column + 1}


def _start(node: Node) -> Position:
    return node.start_mark.line, node.start_mark.column


def _pairs(mapping: Node | None) -> Iterator[tuple[str, Node]]:
    if isinstance(mapping, MappingNode):
        for key, value in mapping.value:
            if isinstance(key, ScalarNode):
                yield str(key.value), value


def _rule_keys(mapping: Node | None) -> tuple[str, ...]:
    return tuple(key for key, _ in _pairs(mapping) if key in RULE_KEYS)


class _Document:
    """One file: its lines as PyYAML counts them, its sections, and their nodes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = [m.group() for m in _LINE.finditer(text) if m.group()]
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.newline = next(
            (line[len(line.rstrip(_BREAKS)) :] for line in self.lines if line[-1] in _BREAKS),
            "\n",
        )
        try:
            with _gc_paused():  # see the loader: the collector slows composing threefold
                root = yaml.compose(text, Loader=yaml.CSafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = {"line": mark.line + 1, "column": mark.column + 1} if mark else {}
            problem = exc.problem or "unreadable YAML"
            raise EditRefused(f"not valid YAML ({problem}); run publisher check", **where) from exc
        except yaml.YAMLError as exc:
            raise EditRefused(f"not valid YAML ({exc}); run publisher check") from exc
        self.sections: dict[str, tuple[ScalarNode, Node]] = {}
        if root is not None and not is_null(root):
            if not isinstance(root, MappingNode):
                raise EditRefused(
                    "expected a mapping of defaults, regions, groups and subscribers at the "
                    "top of the file; run publisher check",
                    **_at(root),
                )
            for key, value in reversed(root.value):  # the first of a repeated key wins
                if isinstance(key, ScalarNode):
                    self.sections[str(key.value)] = (key, value)

    # -- lines ---------------------------------------------------------------------------

    def body(self, line: int) -> str:
        return self.lines[line].rstrip(_BREAKS) if line < len(self.lines) else ""

    def is_blank(self, line: int) -> bool:
        return not self.body(line).strip()

    def is_comment(self, line: int) -> bool:
        return self.body(line).lstrip().startswith("#")

    def indent(self, line: int) -> int:
        body = self.body(line)
        return len(body) - len(body.lstrip(" "))

    def all_blank(self, first: int, stop: int) -> bool:
        return all(self.is_blank(line) for line in range(first, stop))

    def offset(self, position: Position) -> int:
        line, column = position
        return self.starts[line] + column if line < len(self.lines) else len(self.text)

    def source(self, node: Node) -> str:
        return self.text[self.offset(_start(node)) : self.offset(self.end(node))]

    # -- edits ---------------------------------------------------------------------------

    def apply(self, edits: list[_Edit]) -> str:
        text = self.text
        for start, end, new in sorted(edits, reverse=True):  # later ones first: offsets hold
            text = text[:start] + new + text[end:]
        return text

    def replace(self, node: Node, new: str) -> _Edit:
        return self.offset(_start(node)), self.offset(self.end(node)), new

    def remove_lines(self, first: int, last: int) -> _Edit:
        return self.starts[first], self.offset((last + 1, 0)), ""

    def insert_after(self, line: int, new: list[str]) -> _Edit:
        at = self.offset((line + 1, 0))
        unended = line < len(self.lines) and self.lines[line][-1] not in _BREAKS
        text = "".join(f"{row}{self.newline}" for row in new)
        return at, at, (self.newline + text) if unended else text

    def append(self, new: list[str]) -> str:
        ended = not self.text or self.text[-1] in _BREAKS
        rows = "".join(f"{row}{self.newline}" for row in new)
        return self.text + ("" if ended else self.newline) + rows

    def empty_value(self, key: ScalarNode, value: Node) -> _Edit:
        """Clear ``key: []`` or ``key: ~`` to ``key:`` (a comment after it stays)."""
        line = key.end_mark.line
        if self.end(value)[0] != line:
            raise EditRefused(
                "expected the empty value on the key's line; edit by hand", **_at(key)
            )
        start = self.offset((line, self.colon(key) + 1))
        rest = self.body(line)[self.end(value)[1] :]  # spaces and a comment, or nothing
        return start, self.offset((line, len(self.body(line)))), rest if rest.strip() else ""

    def colon(self, key: ScalarNode) -> int:
        """The column of the ':' after ``key`` on its line."""
        body = self.body(key.end_mark.line)
        column = key.end_mark.column
        while body[column : column + 1] == " ":
            column += 1
        if body[column : column + 1] != ":":
            raise EditRefused("expected ':' after this key on its line; edit by hand", **_at(key))
        return column

    def replace_value(self, key: ScalarNode, node: Node, style: _Style, value: Value) -> _Edit:
        """The edit that gives ``key`` a new value, keeping the comment on its line."""
        colon = self.colon(key)
        line = key.end_mark.line
        new = style.inline(str(key.value), value)
        start, end = _start(node), self.end(node)
        if new is not None and start == end:  # `key:` with nothing: write after the colon
            at = self.offset((line, colon + 1))
            return at, at, f" {new}"
        if new is not None and start[0] == end[0] == line:
            # One line: keep a comment after the value in its column when there is room.
            after = re.match(r"( +)#", self.body(line)[end[1] :])
            if after is None:
                return self.offset(start), self.offset(end), new
            gap = max(len(after[1]) - (len(new) - (end[1] - start[1])), 1)
            return self.offset(start), self.offset(end) + len(after[1]), new + " " * gap
        # A value over several lines, or a new block list: rewrite from the colon to the end
        # of the value's last line. The comment on the key's line (or else on that last
        # line) stays, with its spaces; comments between the old items go with them.
        rests = [self.body(line)[colon + 1 :]] if start[0] > line else []
        rests.append(self.body(end[0])[end[1] :])
        comment = next((rest for rest in rests if rest.lstrip().startswith("#")), "")
        first = self.offset((line, colon + 1))
        last = self.offset((end[0], len(self.body(end[0]))))
        if new is not None:
            return first, last, f" {new}{comment}"
        rows = style.pair_lines(str(key.value), value, key.start_mark.column)[1:]
        return first, last, comment + "".join(self.newline + row for row in rows)

    def remove_pair(self, key: ScalarNode, node: Node) -> _Edit:
        """The edit that removes ``key`` and its value, with the comment lines right above."""
        first = key.start_mark.line
        while (
            first > 0
            and self.is_comment(first - 1)
            and self.indent(first - 1) >= key.start_mark.column
        ):
            first -= 1
        return self.remove_lines(first, self.end(node)[0])

    # -- structure -----------------------------------------------------------------------

    def members(self) -> Iterator[_Found]:
        """Every address: the groups' and the subscribers'."""
        for group in self._mappings("groups"):
            name = dict(_pairs(group)).get("name")
            group_name = str(name.value) if isinstance(name, ScalarNode) else None
            for key, emails in group.value:
                if key.value != "emails" or not isinstance(emails, SequenceNode):
                    continue
                for index, item in enumerate(emails.value):
                    if isinstance(item, ScalarNode):
                        yield _Found(item, key, emails, index, None, group, group_name)
        key, entries = self.sections.get("subscribers", (None, None))
        if isinstance(entries, SequenceNode) and key is not None:
            for index, entry in enumerate(entries.value):
                address = dict(_pairs(entry)).get("email")
                if isinstance(address, ScalarNode) and isinstance(entry, MappingNode):
                    yield _Found(address, key, entries, index, entry, None, None)

    def find(self, email: str) -> _Found | None:
        folded = email.strip().lower()
        members = self.members()
        return next((m for m in members if str(m.address.value).strip().lower() == folded), None)

    def not_found(self, email: str) -> EditRefused:
        # Addresses share their domains, so only a near miss is worth suggesting.
        addresses = [str(m.address.value).strip() for m in self.members()]
        close = difflib.get_close_matches(email.strip(), addresses, n=1, cutoff=0.85)
        hint = f"; did you mean {quote(close[0])}?" if close else ""
        return EditRefused(f"{quote(email)} is not in the file{hint}")

    def dash(self, node: Node) -> Position:
        """Where the '-' that starts the list item ``node`` is."""
        line, column = _start(node)
        before = self.body(line)[:column].rstrip()
        if before.endswith("-") and not before[:-1].strip():
            return line, len(before) - 1
        above = line - 1
        while above >= 0 and self.is_blank(above):
            above -= 1
        if not before and above >= 0 and self.body(above).strip() == "-":
            return above, self.indent(above)
        raise EditRefused("expected a '-' before this list item; edit by hand", **_at(node))

    def items(self, seq: SequenceNode, key: ScalarNode) -> list[_Item]:
        """The lines each item of the block list under ``key`` owns."""
        spans = [(*self.dash(node), self.end(node)[0]) for node in seq.value]
        items: list[_Item] = []
        for index, (dash, column, last) in enumerate(spans):
            stop = spans[index + 1][0] if index + 1 < len(spans) else len(self.lines)
            end = last
            while end + 1 < stop and self.is_comment(end + 1) and self.indent(end + 1) > column:
                end += 1
            floor = items[-1].end + 1 if items else key.end_mark.line + 1
            first = dash
            while first > floor and self.is_comment(first - 1) and self.indent(first - 1) >= column:
                first -= 1
            items.append(_Item(column, first, end))
        return items

    def end(self, node: Node) -> Position:
        """Where ``node``'s text ends: after its last character, not after what follows."""
        if isinstance(node, ScalarNode):
            if node.style in ("|", ">"):  # a block scalar's mark is past its trailing breaks
                line = node.end_mark.line - (1 if node.end_mark.column == 0 else 0)
                while line > node.start_mark.line and self.is_blank(line):
                    line -= 1
                return line, len(self.body(line))
            return node.end_mark.line, node.end_mark.column
        if not isinstance(node, SequenceNode | MappingNode) or node.flow_style or not node.value:
            return node.end_mark.line, node.end_mark.column
        # A block collection's mark is where the next token starts, past comments: use
        # its last child's end instead.
        children = (
            node.value if isinstance(node, SequenceNode) else [n for p in node.value for n in p]
        )
        if any(_start(child) < _start(node) for child in children):
            raise EditRefused("this entry uses an alias (*name); edit it by hand", **_at(node))
        return max(self.end(child) for child in children)

    def style(self) -> _Style:
        """How the file writes its entries, for the lines an edit adds."""
        style = _Style(newline=self.newline)
        for name in ("subscribers", "groups"):
            key, seq = self.sections.get(name, (None, None))
            if not isinstance(seq, SequenceNode) or seq.flow_style or key is None:
                continue
            blocks = [
                i
                for i, n in enumerate(seq.value)
                if isinstance(n, MappingNode) and not n.flow_style
            ]
            if not blocks:
                continue
            items = self.items(seq, key)
            style.dash = items[blocks[0]].column
            style.key = max(seq.value[blocks[0]].start_mark.column, style.dash + 2)
            style.separated = len(items) > 1 and self.is_blank(items[-1].first - 1)
            break
        mappings = [*self._mappings("subscribers"), *self._mappings("groups")]
        if isinstance(defaults := self.sections.get("defaults", (None, None))[1], MappingNode):
            mappings.append(defaults)
        for key, value in (pair for mapping in mappings for pair in mapping.value):
            values = [value]
            if isinstance(value, SequenceNode):
                values = value.value
                if style.flow_lists is None:  # the first list decides
                    style.flow_lists = bool(value.flow_style)
                    if not value.flow_style and value.value:
                        style.list_offset = self.dash(value.value[0])[1] - key.start_mark.column
            for node in values:
                if isinstance(node, ScalarNode) and not is_null(node):
                    quoted = node.style if node.style in ("'", '"') else ""
                    style.quotes.setdefault(str(key.value), quoted)
        return style

    def _mappings(self, section: str) -> list[MappingNode]:
        seq = self.sections.get(section, (None, None))[1]
        if not isinstance(seq, SequenceNode):
            return []
        return [node for node in seq.value if isinstance(node, MappingNode)]


# -- writing values the way the file does ---------------------------------------------


@dataclass(slots=True)
class _Style:
    """The file's way of writing entries, learnt from the entries already in it."""

    newline: str
    dash: int = 2  # column of an entry's '-'
    key: int = 4  # column of an entry's keys
    separated: bool = False  # a blank line between entries
    flow_lists: bool | None = None  # [a, b] (the default) or one '- a' line per item
    list_offset: int = 2  # from a key's column to its block list's '-'
    quotes: dict[str, str] = field(default_factory=dict)  # key → '"', "'" or "" (plain)

    def entry_lines(self, entry: Mapping[str, Value]) -> list[str]:
        lines: list[str] = []
        for key, value in entry.items():
            lines.extend(self.pair_lines(key, value, self.key))
        if lines:
            lines[0] = f"{' ' * self.dash}-{' ' * (self.key - self.dash - 1)}{lines[0][self.key :]}"
        return lines

    def pair_lines(self, key: str, value: Value, column: int) -> list[str]:
        pad = " " * column
        inline = self.inline(key, value)
        if inline is not None:
            return [f"{pad}{key}: {inline}"]
        item_pad = " " * (column + self.list_offset)
        return [f"{pad}{key}:", *(f"{item_pad}- {self.scalar(key, v, flow=False)}" for v in value)]

    def inline(self, key: str, value: Value) -> str | None:
        """The value on the key's line, or None for a block list."""
        if isinstance(value, str):
            return self.scalar(key, value, flow=False)
        if value and self.flow_lists is False:
            return None
        return f"[{', '.join(self.scalar(key, item, flow=True) for item in value)}]"

    def scalar(self, key: str, text: str, *, flow: bool) -> str:
        quoted = self.quotes.get(key, "")
        if not quoted and _reads_back(text, flow=flow):
            return text
        if quoted == "'" and text.isprintable():
            return "'" + text.replace("'", "''") + "'"
        return _double_quoted(text)


def _reads_back(text: str, *, flow: bool) -> bool:
    """Whether ``text`` written plain reads as itself, in a list ``[…]`` when ``flow``."""
    if text in _NULLS or text != text.strip() or any(c in _BREAKS for c in text):
        return False
    try:
        node = yaml.compose(f"k: [{text}]" if flow else f"k: {text}", Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return False
    value = node.value[0][1] if isinstance(node, MappingNode) else None
    if flow and isinstance(value, SequenceNode) and len(value.value) == 1:
        value = value.value[0]
    return isinstance(value, ScalarNode) and not value.style and value.value == text


def _double_quoted(text: str) -> str:
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif char.isprintable() and char != "\ufeff":
            escaped.append(char)
        else:  # control characters, line and paragraph separators
            escaped.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(escaped) + '"'
