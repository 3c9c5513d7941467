"""The structure of ``subscriptions.yaml``: defaults, regions, groups and subscribers.

Regions are read first (rules may name them wherever they stand in the file), then
defaults, then groups and subscribers in the order of the file, so that an address
given twice is reported where it is given the second time. The reading of libyaml's
events (``_events``) hands its ``Reader`` what it does not read itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import MappingProxyType

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher.subscriptions._nodes import Report, describe, is_null, one_of, pairs, quote
from publisher.subscriptions._regions import read_regions
from publisher.subscriptions._rules import RULE_KEYS, RuleBook
from publisher.subscriptions._values import Values
from publisher.subscriptions.model import Subscriber, Subscriptions
from publisher.taxonomy import Taxonomy

TOP_KEYS = ("defaults", "regions", "groups", "subscribers")
SUBSCRIBER_KEYS = ("email", "name", *RULE_KEYS)
GROUP_KEYS = ("name", "emails", *RULE_KEYS)
_SUBSCRIBER_KEYSET = frozenset(SUBSCRIBER_KEYS)

_TOP = "at the top level"
_TOP_EXPECTED = f"a mapping with the keys {one_of(TOP_KEYS)} at the top of the file"


def read_document(
    root: Node | None,
    *,
    path: Path,
    report: Report,
    taxonomy: Taxonomy,
    locales: Collection[str] | None,
) -> Subscriptions:
    """What the file says; whatever is wrong is reported and left out."""
    empty: Mapping[str, tuple[str, ...]] = MappingProxyType({})
    if root is None or is_null(root):  # an empty file, or only comments: nobody
        return Subscriptions(path, (), empty, taxonomy)
    if type(root) is not MappingNode:
        hint = "; put the entries under subscribers:" if type(root) is SequenceNode else ""
        report(root, f"expected {_TOP_EXPECTED}, found {describe(root)}{hint}")
        return Subscriptions(path, (), empty, taxonomy)
    top = [(key, value) for key, _, value in pairs(root, report, TOP_KEYS, _TOP)]
    sections = dict(top)
    regions = read_regions(sections.get("regions"), report, taxonomy)
    values = Values(report, taxonomy, {**taxonomy.regions, **regions}, locales)
    reader = Reader(report, values, sections.get("defaults"))
    # Groups and subscribers in the order they stand, so "first" means first in the file.
    for key, value in top:
        if key == "groups":
            reader.entries(value, "groups", "a list of groups", reader.group)
        elif key == "subscribers":
            reader.entries(value, "subscribers", "a list of subscribers", reader.subscriber)
    return subscriptions(path, reader.subscribers, regions, taxonomy)


def subscriptions(
    path: Path,
    subscribers: list[Subscriber],
    regions: dict[str, tuple[str, ...]],
    taxonomy: Taxonomy,
) -> Subscriptions:
    """What the file says, once read: its subscribers and its own regions."""
    return Subscriptions(
        path=path,
        subscribers=tuple(subscribers),
        regions=MappingProxyType(regions),
        taxonomy=taxonomy.with_regions(regions) if regions else taxonomy,
    )


class Reader:
    """Reads rules, groups and subscribers, and keeps each address once."""

    def __init__(self, report: Report, values: Values, defaults: Node | None) -> None:
        self.report = report
        self.values = values
        self.rules = RuleBook(self.rule_of(defaults, "in defaults"))
        self.subscribers: list[Subscriber] = []
        self.lines: dict[str, int] = {}  # lower-cased address → line first given
        self._groups: dict[str, int] = {}  # group name → line

    def entries(
        self, node: Node, section: str, expected: str, read: Callable[[Node], None]
    ) -> None:
        if type(node) is SequenceNode:
            for entry in node.value:
                read(entry)
        elif not is_null(node):
            self.report(node, f"expected {expected} under {section}, found {describe(node)}")

    def rule_of(self, node: Node | None, where: str) -> dict[str, object]:
        """The valid rule keys of a mapping whose keys are all rule keys (defaults)."""
        if node is None or is_null(node):
            return {}
        if type(node) is not MappingNode:
            self.report(node, f"expected a mapping of rule keys {where}, found {describe(node)}")
            return {}
        readers = self.values.rule_keys
        own: dict[str, object] = {}
        for key, _, value in pairs(node, self.report, RULE_KEYS, where):
            if (read := readers[key](value)) is not None:
                own[key] = read
        return own

    def subscriber(self, node: Node) -> None:
        if type(node) is not MappingNode:
            self.report(
                node, f"expected a subscriber (a mapping with an email), found {describe(node)}"
            )
            return
        # The usual entry has distinct, known keys and values seen before: look them up
        # in the caches of valid values and leave everything else to the careful path.
        # (A null value's text, "" or "~" or "null", is never a valid value of any key.)
        try:
            keys = [key.value for key, _ in node.value]
            usual = len(set(keys)) == len(keys) and _SUBSCRIBER_KEYSET.issuperset(keys)
        except TypeError:  # a key that is a list or a mapping
            usual = False
        if not usual:
            self._careful_subscriber(node)
            return
        known, readers = self.values.known, self.values.rule_keys
        own: dict[str, object] = {}
        email_node: Node | None = None
        name_node: Node | None = None
        for key, (_, value_node) in zip(keys, node.value, strict=True):
            if key == "email":
                email_node = value_node
            elif key == "name":
                name_node = value_node
            else:
                kind = type(value_node)
                value: object | None = None
                if kind is ScalarNode:
                    value = known[key].get(value_node.value)
                elif kind is SequenceNode:
                    try:
                        value = known[key].get(tuple([item.value for item in value_node.value]))
                    except TypeError:  # an item is a list or a mapping: unhashable
                        value = None
                if value is None:
                    value = readers[key](value_node)
                if value is not None:
                    own[key] = value
        self._add(node, email_node, name_node, own)

    def _careful_subscriber(self, node: MappingNode) -> None:
        readers = self.values.rule_keys
        own: dict[str, object] = {}
        email_node: Node | None = None
        name_node: Node | None = None
        for key, _, value in pairs(node, self.report, SUBSCRIBER_KEYS, "in a subscriber"):
            if key == "email":
                email_node = value
            elif key == "name":
                name_node = value
            elif (read := readers[key](value)) is not None:
                own[key] = read
        self._add(node, email_node, name_node, own)

    def _add(
        self, node: Node, email_node: Node | None, name_node: Node | None, own: dict[str, object]
    ) -> None:
        name = None if name_node is None else self.values.text(name_node, "a name")
        if email_node is None:
            self.report(node, "this subscriber has no email; expected an email: key")
            return
        email = self._claim(email_node)
        if email is not None:
            line = node.start_mark.line + 1
            self.subscribers.append(Subscriber(email, name, self.rules.rule(own), None, line))

    def group(self, node: Node) -> None:
        if type(node) is not MappingNode:
            self.report(
                node,
                f"expected a group (a mapping with a name and emails), found {describe(node)}",
            )
            return
        readers = self.values.rule_keys
        own: dict[str, object] = {}
        name_node: Node | None = None
        emails_node: Node | None = None
        for key, _, value in pairs(node, self.report, GROUP_KEYS, "in a group"):
            if key == "name":
                name_node = value
            elif key == "emails":
                emails_node = value
            elif (read := readers[key](value)) is not None:
                own[key] = read
        name = self._group_name(node, name_node)
        if emails_node is None:
            self.report(node, "this group has no emails; expected an emails: list")
            return
        if type(emails_node) is not SequenceNode:
            if not is_null(emails_node):
                found = describe(emails_node)
                self.report(emails_node, f"expected a list of email addresses, found {found}")
            return
        rule = self.rules.rule(own)
        for item in emails_node.value:
            email = self._claim(item)
            if email is not None and name is not None:
                line = item.start_mark.line + 1
                self.subscribers.append(Subscriber(email, None, rule, name, line))

    def _group_name(self, node: Node, name_node: Node | None) -> str | None:
        if name_node is None:
            self.report(node, "this group has no name; expected a name: key")
            return None
        name = self.values.text(name_node, "a group name")
        if name is None:
            if is_null(name_node):
                self.report(name_node, "expected a group name, found nothing")
            return None
        if name in self._groups:
            first = self._groups[name]
            self.report(name_node, f"group {quote(name)} is defined twice; first at line {first}")
            return None
        self._groups[name] = name_node.start_mark.line + 1
        return name

    def _claim(self, node: Node) -> str | None:
        """The address at ``node`` if it is valid and not given before."""
        email = self.values.email(node)
        if email is None:
            return None
        folded = email.lower()
        first = self.lines.get(folded)
        if first is not None:
            self.report(
                node,
                f"address {quote(email)} is given twice (compared without regard to case); "
                f"first at line {first}",
            )
            return None
        self.lines[folded] = node.start_mark.line + 1
        return email
