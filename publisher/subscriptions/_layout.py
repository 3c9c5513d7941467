"""How ``subscriptions.yaml`` is laid out, read so that an edit keeps the rest of it.

The text-level machinery of :mod:`publisher.subscriptions.editing`: the file's lines as
PyYAML counts them, its sections and their nodes, where an address is, how its lists
and scalars are written, so that an edit changes those lines only.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher.errors import PublisherError
from publisher.subscriptions._nodes import gc_paused, is_null, quote
from publisher.subscriptions._rules import RULE_KEYS

Value = str | tuple[str, ...]  # a scalar's text as written, or a list of them

# PyYAML counts NEL, LS and PS as line breaks too (YAML 1.1); lines here must be its lines.
BREAKS = "\r\n\x85\u2028\u2029"
LINE = re.compile(r"[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029]|\Z)")
NULLS = frozenset({"", "~", "null", "Null", "NULL"})  # what the loader reads as nothing
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


# -- reading the file's layout --------------------------------------------------------

Edit = tuple[int, int, str]  # replace text[start:end] with the string


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
        return node_at(self.address)


@dataclass(frozen=True, slots=True)
class _Item:
    """The lines of one item of a block list (0-based)."""

    column: int  # of its '-'
    first: int  # its own comment lines above the '-' line, or that line
    end: int  # its last line, or its own comment lines indented under it


def node_at(node: Node) -> dict[str, int]:
    return {"line": node.start_mark.line + 1, "column": node.start_mark.column + 1}


def _start(node: Node) -> Position:
    return node.start_mark.line, node.start_mark.column


def _pairs(mapping: Node | None) -> Iterator[tuple[str, Node]]:
    if isinstance(mapping, MappingNode):
        for key, value in mapping.value:
            if isinstance(key, ScalarNode):
                yield str(key.value), value


def rule_keys(mapping: Node | None) -> tuple[str, ...]:
    return tuple(key for key, _ in _pairs(mapping) if key in RULE_KEYS)


class Document:
    """One file: its lines as PyYAML counts them, its sections, and their nodes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = [m.group() for m in LINE.finditer(text) if m.group()]
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.newline = next(
            (line[len(line.rstrip(BREAKS)) :] for line in self.lines if line[-1] in BREAKS),
            "\n",
        )
        try:
            with gc_paused():  # see the loader: the collector slows composing threefold
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
                    **node_at(root),
                )
            for key, value in reversed(root.value):  # the first of a repeated key wins
                if isinstance(key, ScalarNode):
                    self.sections[str(key.value)] = (key, value)

    # -- lines ---------------------------------------------------------------------------

    def body(self, line: int) -> str:
        return self.lines[line].rstrip(BREAKS) if line < len(self.lines) else ""

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

    def apply(self, edits: list[Edit]) -> str:
        text = self.text
        for start, end, new in sorted(edits, reverse=True):  # later ones first: offsets hold
            text = text[:start] + new + text[end:]
        return text

    def replace(self, node: Node, new: str) -> Edit:
        return self.offset(_start(node)), self.offset(self.end(node)), new

    def remove_lines(self, first: int, last: int) -> Edit:
        return self.starts[first], self.offset((last + 1, 0)), ""

    def insert_after(self, line: int, new: list[str]) -> Edit:
        at = self.offset((line + 1, 0))
        unended = line < len(self.lines) and self.lines[line][-1] not in BREAKS
        text = "".join(f"{row}{self.newline}" for row in new)
        return at, at, (self.newline + text) if unended else text

    def append(self, new: list[str]) -> str:
        ended = not self.text or self.text[-1] in BREAKS
        rows = "".join(f"{row}{self.newline}" for row in new)
        return self.text + ("" if ended else self.newline) + rows

    def empty_value(self, key: ScalarNode, value: Node) -> Edit:
        """Clear ``key: []`` or ``key: ~`` to ``key:`` (a comment after it stays)."""
        line = key.end_mark.line
        if self.end(value)[0] != line:
            raise EditRefused(
                "expected the empty value on the key's line; edit by hand", **node_at(key)
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
            raise EditRefused(
                "expected ':' after this key on its line; edit by hand", **node_at(key)
            )
        return column

    def replace_value(self, key: ScalarNode, node: Node, style: _Style, value: Value) -> Edit:
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

    def remove_pair(self, key: ScalarNode, node: Node) -> Edit:
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
        raise EditRefused("expected a '-' before this list item; edit by hand", **node_at(node))

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
            raise EditRefused("this entry uses an alias (*name); edit it by hand", **node_at(node))
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
    if text in NULLS or text != text.strip() or any(c in BREAKS for c in text):
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
