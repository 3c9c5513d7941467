"""Reading ``subscriptions.yaml``: all problems at once, each at its line and column.

``load_subscriptions`` raises :class:`ValidationFailed` with every problem found;
``check_subscriptions`` returns them (``publisher check``); ``parse_subscriptions``
reads text already in memory (tests, reload on edit). Each problem is
``path:line:column: message`` (1-based), at the node that is wrong.

Speed: 100,000 subscribers in about two seconds. A file is read straight from
libyaml's events (``_events``), with no node tree for the whole file: only an entry
that is not usual, regions, defaults and groups are made into nodes, for the code that
finds and words problems (``_document``). A file with what that reading leaves alone
(anchors, aliases, tags, a syntax error, a mistake at the top level) is read again from
the whole node tree. libyaml composes that tree (the Python composer is ten times
slower), plain scalars are not resolved to Python types (we read their raw text
anyway), the cyclic garbage collector is paused while either reading runs, and every
distinct value is checked once (see ``_values``).
"""

from __future__ import annotations

import codecs
from collections.abc import Collection
from pathlib import Path

import yaml
from yaml.nodes import Node, ScalarNode, SequenceNode

from publisher.errors import Problem, ValidationFailed
from publisher.subscriptions._document import read_document
from publisher.subscriptions._events import read_events
from publisher.subscriptions._nodes import (
    MAP_TAG,
    NULL_TAG,
    NULLS,
    SEQ_TAG,
    STR_TAG,
    Report,
    gc_paused,
)
from publisher.subscriptions.model import Subscriptions
from publisher.taxonomy import Taxonomy

__all__ = ["check_subscriptions", "load_subscriptions", "parse_subscriptions"]


def load_subscriptions(
    path: Path, *, taxonomy: Taxonomy, locales: Collection[str] | None = None
) -> Subscriptions:
    """Read and validate the file at ``path``; raise ValidationFailed listing every problem.

    ``locales``, when given, are the locales a subscriber may choose (publisher.toml's).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationFailed([_unreadable(path, exc)]) from exc
    return parse_subscriptions(data, path=path, taxonomy=taxonomy, locales=locales)


def check_subscriptions(
    path: Path, *, taxonomy: Taxonomy, locales: Collection[str] | None = None
) -> list[Problem]:
    """Every problem in the file at ``path``, in the order of the file; empty when fine."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [_unreadable(path, exc)]
    return _read(data, path, taxonomy, locales)[1]


def parse_subscriptions(
    text: str | bytes,
    *,
    path: str | Path,
    taxonomy: Taxonomy,
    locales: Collection[str] | None = None,
) -> Subscriptions:
    """Validate the contents of a file; ``path`` is what messages and the result name."""
    subscriptions, problems = _read(text, Path(path), taxonomy, locales)
    if problems:
        raise ValidationFailed(problems)
    return subscriptions


def _read(
    data: str | bytes, path: Path, taxonomy: Taxonomy, locales: Collection[str] | None
) -> tuple[Subscriptions, list[Problem]]:
    report = Report(str(path))
    text = _decode(data, report) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    with gc_paused():
        if text is not None:
            # From libyaml's events, unless the file has what only the node tree reads.
            events_report = Report(str(path))
            subscriptions = read_events(
                text, path=path, report=events_report, taxonomy=taxonomy, locales=locales
            )
            if subscriptions is not None:
                return subscriptions, _sorted(events_report.problems)
        root = None if text is None else _compose(text, report)
        subscriptions = read_document(
            root, path=path, report=report, taxonomy=taxonomy, locales=locales
        )
        del root  # freed here, by reference counting, while the collector is still off
    return subscriptions, _sorted(report.problems)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.column))


class _Composer(yaml.CSafeLoader):
    """libyaml's composer, with every plain scalar tagged a string (or null when empty).

    The values are read from each scalar's raw text, so resolving ``NO`` to a boolean
    or ``08:00`` to sexagesimal 480 would only cost time; ``null`` stays recognizable
    for ``key:`` written with nothing after it.
    """

    def resolve(self, kind: type[Node], value: str | None, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            return NULL_TAG if implicit[0] and value in NULLS else STR_TAG
        return SEQ_TAG if kind is SequenceNode else MAP_TAG

    # libyaml's composer calls the two hooks of PyYAML's path resolvers around every node.
    # We use no path resolvers; a C callable that takes and ignores the same arguments
    # costs less than a Python method that returns at once (~8% of composing).
    # (The results are unused, hence the ignored types.)
    descend_resolver = staticmethod(slice)  # type: ignore[assignment]  # (parent, index)
    ascend_resolver = staticmethod(tuple)  # type: ignore[assignment]  # ()


def _compose(text: str, report: Report) -> Node | None:
    try:
        return yaml.compose(text, Loader=_Composer)
    except yaml.MarkedYAMLError as exc:
        _syntax_problem(exc, text, report)
    except yaml.reader.ReaderError as exc:
        # libyaml gives the byte offset in the UTF-8 text of the first character that YAML
        # does not allow (C0 controls but tab, CR and LF; DEL; surrogates; …).
        line, column = _position(text.encode("utf-8", "surrogatepass"), exc.position)
        report.at(
            line,
            column,
            f"control character U+{exc.character:04X} is not allowed in YAML; "
            "expected text (is this a binary file?)",
        )
    return None


# libyaml's words for some mistakes people make, and what to tell them instead; keyed by
# the problem, or by (context, problem) where the context tells more.
_HINTS: dict[str | tuple[str | None, str], str] = {
    "mapping values are not allowed in this context": (
        "a ':' where no key may start; expected the key at the indentation of the keys "
        "around it, or quotes around a value that contains ': '"
    ),
    "did not find expected key": "expected a key at the indentation of the keys around it",
    "did not find expected '-' indicator": (
        "expected a '-' item at the indentation of the list around it"
    ),
    "did not find expected ',' or ']'": "expected ',' or the ']' that closes the list",
    "did not find expected ',' or '}'": "expected ',' or the '}' that closes the mapping",
    "found undefined alias": "an alias (*name) that no anchor (&name) before it defines",
    "but found another document": "a second document ('---'); expected one document",
    ("while scanning a quoted scalar", "found unexpected end of stream"): (
        "the file ends inside a quoted value; expected its closing quote"
    ),
}


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, report: Report) -> None:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line, mark.column) if mark is not None else (0, 0)
    problem = exc.problem or "unreadable YAML"
    lines = text.splitlines()
    at_tab = line < len(lines) and lines[line][column : column + 1] == "\t"
    if at_tab or "tab character" in problem:
        message = "a tab character; YAML indents with spaces only: expected spaces"
    else:
        hint = _HINTS.get((exc.context, problem)) or _HINTS.get(problem, problem)
        message = f"invalid YAML: {hint}"
        # "while parsing a flow sequence" and the like point at where the trouble began.
        context = exc.context_mark
        if exc.context and exc.context.startswith("while ") and context is not None:
            what = exc.context.removeprefix("while ")
            message += f" ({what} started at line {context.line + 1}, column {context.column + 1})"
    report.at(line + 1, column + 1, message)


def _decode(data: bytes, report: Report) -> str | None:
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            report.at(1, 1, "the file is UTF-16 text; expected UTF-8 (save it as UTF-8)")
            return None
        line, column = _position(data, exc.start)
        report.at(
            line,
            column,
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x}: {exc.reason}); "
            "expected a UTF-8 text file",
        )
        return None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column (in characters) of a byte offset."""
    before = data[:offset]
    start = before.rfind(b"\n") + 1
    column = len(before[start:].decode("utf-8", "replace"))
    return before.count(b"\n") + 1, column + 1


def _unreadable(path: Path, exc: OSError) -> Problem:
    return Problem(str(path), 1, 1, f"cannot read the file: {exc.strerror or exc}")
