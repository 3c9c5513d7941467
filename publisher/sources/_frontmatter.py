"""The YAML front matter of a Markdown file: split off, composed, read and checked.

The front matter is composed into YAML nodes and never constructed into Python objects:
each value is the text as written, so YAML 1.1's surprises cannot happen (``NO`` is
Norway, not ``False``; ``1:20`` is not the sexagesimal 80; a date is text parsed here as
ISO 8601), and each value keeps its line and column for messages.

Every problem met in a file is collected with its position rather than raised, so one
pass reports them all, as ``path:line:column: message`` (``path: message`` when there
is no position).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from publisher.errors import Problem
from publisher.taxonomy import Taxonomy

_FRONT_MATTER = re.compile(
    r"\A\ufeff?---[ \t]*\r?\n(?P<yaml>.*?)^---[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE
)
_NULL = "tag:yaml.org,2002:null"
_KEYS = ("id", "title", "published", "updated", "issuer", "fields_of_work", "countries", "summary")
_DATE_EXAMPLE = "2024-12-06T10:00:00+05:00"


def split_front_matter(text: str) -> tuple[str, str] | None:
    """The YAML between the opening and closing ``---`` lines, and the Markdown after
    them; ``None`` when the text does not start with front matter."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return None
    return match["yaml"], text[match.end() :]


class FrontMatter:
    """One file's front matter, read key by key, and every problem found in the file."""

    def __init__(self, path: Path, taxonomy: Taxonomy) -> None:
        self.path = path
        self.taxonomy = taxonomy
        self.nodes: dict[str, yaml.Node] = {}  # key → its value, once composed
        self._found: list[tuple[int, int, str]] = []  # line, column (0: none), message

    def compose(self, text: str) -> bool:
        """Compose the YAML into :attr:`nodes`; ``False`` when it cannot be read at all."""
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = f"invalid YAML front matter: {exc.problem or exc.context}"
            if mark is None:
                self.report(message)
            else:  # The front matter starts on the file's second line.
                self.report(message, line=mark.line + 2, column=mark.column + 1)
            return False
        except yaml.reader.ReaderError as exc:
            before = text[: exc.position]
            line, column = before.count("\n") + 2, exc.position - before.rfind("\n")
            self.report(
                f"invalid YAML front matter: {exc.reason} ({exc.character!r})",
                line=line,
                column=column,
            )
            return False
        except yaml.YAMLError as exc:
            self.report(f"invalid YAML front matter: {exc}")
            return False
        except RecursionError:
            self.report("invalid YAML front matter: nested too deeply")
            return False
        if root is None:
            root = yaml.MappingNode("tag:yaml.org,2002:map", [])
        if not isinstance(root, yaml.MappingNode):
            self.report("expected the front matter to be 'key: value' lines", root)
            return False
        for key, value in root.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name not in _KEYS:
                self.report(f"unknown key {name!r}; expected one of {', '.join(_KEYS)}", key)
            elif name in self.nodes:
                self.report(f"{name!r} is given twice; expected it once", key)
            else:
                self.nodes[name] = value
        return True

    # -- values --------------------------------------------------------------------

    def text(self, key: str, *, required: bool = False) -> str | None:
        node = self.nodes.get(key)
        if node is None:
            if required:
                self.report(f"no {key!r} in the front matter; expected '{key}: …'")
            return None
        if not isinstance(node, yaml.ScalarNode):
            self.report(f"{key!r} is a {_kind(node)}; expected text", node)
            return None
        if node.tag == _NULL:
            if required:
                self.report(f"{key!r} is empty; expected a value", node)
            return None
        return str(node.value)

    def date(self, key: str, *, required: bool = False) -> datetime | None:
        text = self.text(key, required=required)
        if text is None:
            return None
        node = self.nodes[key]
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            self.report(
                f"{key} {text!r} is not an ISO 8601 date and time; "
                f"expected one with a UTC offset, such as {_DATE_EXAMPLE}",
                node,
            )
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            self.report(
                f"{key} {text!r} has no UTC offset; expected one such as {_DATE_EXAMPLE}", node
            )
            return None
        try:
            value.astimezone(UTC)  # the store keeps UTC: years 1 to 9999 there too
        except OverflowError:
            self.report(f"{key} {text!r} is out of range; expected a year from 1 to 9999", node)
            return None
        return value

    def _strings(self, key: str) -> list[tuple[str, yaml.Node]] | None:
        """A list of texts (one text stands for a list of one); ``None`` when absent."""
        node = self.nodes.get(key)
        if node is None:
            return None
        if isinstance(node, yaml.ScalarNode):
            return [] if node.tag == _NULL else [(str(node.value).strip(), node)]
        if not isinstance(node, yaml.SequenceNode):
            self.report(f"{key!r} is a {_kind(node)}; expected a list", node)
            return None
        out: list[tuple[str, yaml.Node]] = []
        for entry in node.value:
            if isinstance(entry, yaml.ScalarNode) and entry.tag != _NULL and entry.value.strip():
                out.append((str(entry.value).strip(), entry))
            else:
                self.report(f"an entry of {key!r} is not a name; expected a text", entry)
        return out

    # -- names the taxonomy must know ----------------------------------------------

    def issuer(self) -> str | None:
        text = self.text("issuer")
        if text is None:
            return None
        slug = self.taxonomy.issuer(text)
        if slug is None:
            self.report(
                f"unknown issuer {text!r}; expected an issuer slug"
                + _hint(text, self.taxonomy.issuers, "mission-to-moldova"),
                self.nodes["issuer"],
            )
        return slug

    def fields_of_work(self) -> tuple[str, ...] | None:
        entries = self._strings("fields_of_work")
        if entries is None:
            return None
        slugs: list[str] = []
        for text, node in entries:
            slug = self.taxonomy.field_of_work(text)
            if slug is None:
                self.report(
                    f"unknown field of work {text!r}; expected a field-of-work slug"
                    + _hint(text, self.taxonomy.fields_of_work, "human-rights"),
                    node,
                )
            elif slug not in slugs:
                slugs.append(slug)
        return tuple(slugs)

    def countries(self) -> tuple[str, ...] | None:
        entries = self._strings("countries")
        if entries is None:
            return None
        codes: list[str] = []
        for text, node in entries:
            if text in self.taxonomy.regions:
                found: Iterable[str] = self.taxonomy.regions[text]
            elif (code := self.taxonomy.country(text)) is not None:
                found = (code,)
            else:
                self.report(
                    f"unknown country or region {text!r}; expected an ISO 3166-1 alpha-2 code "
                    "or a region name" + _hint(text, self.taxonomy.regions, "central-asia"),
                    node,
                )
                continue
            codes.extend(code for code in found if code not in codes)
        return tuple(codes)

    # -- problems ------------------------------------------------------------------

    def where(self, node: yaml.Node) -> str:
        # Marks are 0-based and relative to the front matter, which starts on line 2.
        return f"{self.path}:{node.start_mark.line + 2}:{node.start_mark.column + 1}"

    def report(
        self, message: str, node: yaml.Node | None = None, *, line: int = 0, column: int = 0
    ) -> None:
        if node is not None:
            line, column = node.start_mark.line + 2, node.start_mark.column + 1
        self._found.append((line, column, message))

    @property
    def has_problems(self) -> bool:
        return bool(self._found)

    @property
    def problems(self) -> list[str]:
        """Every problem met, in the order of the file (those without a position first)."""
        return [
            str(Problem(str(self.path), line, column, message))
            if line
            else f"{self.path}: {message}"
            for line, column, message in sorted(self._found, key=lambda p: p[:2])
        ]


def _kind(node: yaml.Node) -> str:
    return "mapping" if isinstance(node, yaml.MappingNode) else "list"


def _hint(text: str, choices: Iterable[str], example: str) -> str:
    close = difflib.get_close_matches(text.lower(), list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else f" such as {example!r}"
