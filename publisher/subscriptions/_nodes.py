"""Walking PyYAML's node tree: positions, what a node is, and the checks every mapping gets.

We read the composed nodes, not constructed Python values: nodes carry the position of
every key and value, and the raw text of every scalar, which sidesteps YAML 1.1's
surprises (``NO`` is ``False``, an unquoted ``08:00`` is the integer 480).
"""

from __future__ import annotations

import difflib
import gc
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher.errors import Problem

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"
SEQ_TAG = "tag:yaml.org,2002:seq"
MAP_TAG = "tag:yaml.org,2002:map"
NULLS = frozenset({"", "~", "null", "Null", "NULL"})  # a plain scalar that is null


class Report:
    """The problems found in one file, each at the node that is wrong."""

    __slots__ = ("path", "problems")

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def __call__(self, node: Node, message: str) -> None:
        mark = node.start_mark  # 0-based, columns counted in characters
        self.problems.append(Problem(self.path, mark.line + 1, mark.column + 1, message))

    def at(self, line: int, column: int, message: str) -> None:
        """A problem at a 1-based position that no node carries (syntax, encoding)."""
        self.problems.append(Problem(self.path, line, column, message))


def is_null(node: Node) -> bool:
    """``key:`` with nothing after it, or ``~`` or ``null``."""
    return type(node) is ScalarNode and node.tag == NULL_TAG


def describe(node: Node) -> str:
    """What a person wrote, for "found …" in a message."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL_TAG:
        return "nothing"
    return quote(node.value)


def quote(text: str) -> str:
    """``'text'`` for a message, with control characters escaped."""
    return repr(text)


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """``"; did you mean 'x'?"`` when one choice is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        folded = {c.casefold(): c for c in choices}
        close = [folded[m] for m in difflib.get_close_matches(word.casefold(), folded, n=1)]
    return f"; did you mean {quote(close[0])}?" if close else ""


def one_of(choices: Collection[str]) -> str:
    return ", ".join(choices)


def pairs(
    node: MappingNode, report: Report, allowed: Collection[str] | None, where: str
) -> Iterator[tuple[str, ScalarNode, Node]]:
    """The mapping's ``(key, key node, value node)``, leaving out (and reporting) keys
    that are not plain names, repeated, or not ``allowed`` (any name when ``None``)."""
    seen: dict[str, ScalarNode] = {}
    for key_node, value_node in node.value:
        if type(key_node) is not ScalarNode:
            report(key_node, f"expected a key name {where}, found {describe(key_node)}")
            continue
        key = key_node.value
        if key in seen:
            first = seen[key].start_mark.line + 1
            report(key_node, f"duplicate key {quote(key)} {where}; first given at line {first}")
            continue
        seen[key] = key_node
        if allowed is not None and key not in allowed:
            report(key_node, unknown_key(key, allowed, where))
            continue
        yield key, key_node, value_node


def unknown_key(key: str, allowed: Collection[str], where: str) -> str:
    if key == "<<":
        # The composer does not apply YAML 1.1 merge keys; defaults and groups do the job.
        return (
            f"a YAML merge key ('<<') {where} is not supported; "
            "expected shared settings under defaults or in a group"
        )
    hint = did_you_mean(key, allowed) or f"; expected one of: {one_of(allowed)}"
    return f"unknown key {quote(key)} {where}{hint}"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic collector off while millions of nodes are made and read.

    The node tree has no cycles the collector could free, but its generational passes
    would scan the growing tree again and again: 100,000 subscribers take ~16 s to
    compose with it on, ~4.5 s with it off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
