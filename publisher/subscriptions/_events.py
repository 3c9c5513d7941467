"""Reading ``subscriptions.yaml`` straight from libyaml's events, without a node tree.

Composing PyYAML's node tree makes a Python object per node and then walks and frees
them all: for 100,000 subscribers, about twice what taking libyaml's events one by one
costs. So the loader first reads the events: a usual subscriber's keys and raw values
go straight to the caches of valid values (``Values.raw``) and to the rules.

Problems are still found and worded by the careful code over nodes (``_document``):
an entry that is not usual (one with a problem, or a key or value written another way)
is made into nodes from its events and read by it, and so are regions, defaults and
groups, which are few. What this reading leaves to the careful one over the whole node
tree (an anchor, an alias, a tag, a mistake at the top of the file, ``regions`` or
``defaults`` after the entries, a second document, a syntax error) makes it give up,
and the loader reads the file again that way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import yaml
from yaml._yaml import CParser
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher.subscriptions._document import TOP_KEYS, Reader, subscriptions
from publisher.subscriptions._email import email_problem
from publisher.subscriptions._nodes import MAP_TAG, NULL_TAG, NULLS, SEQ_TAG, STR_TAG, Report
from publisher.subscriptions._regions import read_regions
from publisher.subscriptions._values import Values
from publisher.subscriptions.model import Subscriber, Subscriptions
from publisher.taxonomy import Taxonomy


def read_events(
    text: str,
    *,
    path: Path,
    report: Report,
    taxonomy: Taxonomy,
    locales: Collection[str] | None,
) -> Subscriptions | None:
    """What the file says, problems to ``report``; None when it needs the careful reading
    over the whole node tree (and then ``report`` may hold some of its problems)."""
    try:
        return _EventReader(text, path, report, taxonomy, locales).read()
    except (_Unusual, yaml.YAMLError):  # libyaml's own errors are worded by the careful one
        return None
    except RecursionError:  # nodes nested deeper than Python recurses, not libyaml's C (1,000)
        return None


class _Unusual(Exception):
    """Something for the careful reading over the whole node tree."""


class _Careful(Exception):
    """An entry for the careful code: it may have a problem, which that code words."""


# libyaml's events. They are typed Any here: the stubs allow marks of None, which libyaml
# never gives, and this module compares classes with `is` in its hot loop.
_Event = Any


class _EventReader:
    """Reads the events of one file in order, keeping each address once."""

    def __init__(
        self,
        text: str,
        path: Path,
        report: Report,
        taxonomy: Taxonomy,
        locales: Collection[str] | None,
    ) -> None:
        self._next: Callable[[], _Event] = CParser(text).get_event
        self._path = path
        self._taxonomy = taxonomy
        self._locales = locales
        self._report = report
        self._regions: dict[str, tuple[str, ...]] = {}
        self._defaults: Node | None = None
        self._reader: Reader | None = None  # made at the first entry, after regions and defaults

    def read(self) -> Subscriptions:
        next_event = self._next
        next_event()  # the stream's start
        if type(next_event()) is not DocumentStartEvent:  # an empty file
            raise _Unusual
        root = next_event()
        if type(root) is not MappingStartEvent or not _plain(root):
            raise _Unusual
        seen: set[str] = set()
        while type(key := next_event()) is ScalarEvent and _plain(key):
            section = key.value
            if section in seen or section not in TOP_KEYS:
                raise _Unusual
            seen.add(section)
            value = next_event()
            if section in ("regions", "defaults"):
                if self._reader is not None:  # read after the entries that may use them
                    raise _Unusual
                node = self._node(value)
                if section == "regions":
                    self._regions = read_regions(node, self._report, self._taxonomy)
                else:
                    self._defaults = node
            else:
                self._entries(value, self._subscriber if section == "subscribers" else self._group)
        if type(key) is not MappingEndEvent:
            raise _Unusual
        if type(next_event()) is not DocumentEndEvent or type(next_event()) is not StreamEndEvent:
            raise _Unusual  # a second document
        return subscriptions(self._path, self.reader().subscribers, self._regions, self._taxonomy)

    def reader(self) -> Reader:
        """What reads the entries, made at the first: regions and defaults come before."""
        if self._reader is None:
            regions = {**self._taxonomy.regions, **self._regions}
            values = Values(self._report, self._taxonomy, regions, self._locales)
            self._reader = Reader(self._report, values, self._defaults)
        return self._reader

    def _entries(self, start: _Event, read: Callable[[Reader, _Event], None]) -> None:
        reader = self.reader()
        if not _plain(start):
            raise _Unusual
        if type(start) is ScalarEvent and _null(start):  # `subscribers:` with nothing
            return
        if type(start) is not SequenceStartEvent:
            raise _Unusual
        next_event = self._next
        while type(entry := next_event()) is not SequenceEndEvent:
            read(reader, entry)

    def _group(self, reader: Reader, start: _Event) -> None:
        reader.group(self._node(start))

    def _subscriber(self, reader: Reader, start: _Event) -> None:
        """One entry of subscribers: a usual one read here, any other by the careful code.

        The usual entry is a mapping with plain keys, each once, and values valid and
        mostly seen before: each is looked up in the caches of valid values, and a new
        one checked (``Values.raw``). Every event taken is kept in ``read`` until the
        entry is done, to make the node of an entry that is not usual.
        """
        read = [start]
        record = read.append
        line = start.start_mark.line + 1
        try:
            if type(start) is not MappingStartEvent or not _plain(start):
                raise _Careful
            next_event = self._next
            known = reader.values.known
            own: dict[str, object] = {}
            email: _Event = None
            name: str | None = None
            named = False
            while True:
                record(key := next_event())
                if type(key) is not ScalarEvent:
                    break
                record(event := next_event())
                if key.anchor is not None or key.tag is not None:
                    raise _Careful
                if type(event) is ScalarEvent:
                    if event.anchor is not None or event.tag is not None:
                        raise _Careful
                    raw: str | tuple[str, ...] = event.value
                    if raw in NULLS and event.implicit[0]:  # nothing: an empty list, or wrong
                        raw = ()
                elif type(event) is SequenceStartEvent:
                    raw = self._items(event, record)
                else:  # a mapping or an alias
                    raise _Careful
                field = key.value
                if (cached := known.get(field)) is not None:
                    if field in own:
                        raise _Careful
                    value = cached.get(raw)
                    if value is None and (value := reader.values.raw(field, raw)) is None:
                        raise _Careful
                    own[field] = value
                elif field == "email":
                    if email is not None or type(raw) is not str:
                        raise _Careful
                    email = event
                elif field == "name":
                    if named or type(event) is not ScalarEvent:
                        raise _Careful
                    named, name = True, raw.strip() or None if isinstance(raw, str) else None
                else:
                    raise _Careful
            if type(key) is not MappingEndEvent or email is None:
                raise _Careful
            address = email.value.strip()
            folded = address.lower()
            lines = reader.lines
            if folded in lines or email_problem(address) is not None:
                raise _Careful
            lines[folded] = email.start_mark.line + 1
            reader.subscribers.append(Subscriber(address, name, reader.rules.rule(own), None, line))
        except _Careful:
            reader.subscriber(self._node_of(read))

    def _items(self, start: _Event, record: Callable[[_Event], None]) -> tuple[str, ...]:
        """The texts of a list of plain values, whose sequence has begun with ``start``."""
        if start.anchor is not None or start.tag is not None:
            raise _Careful
        next_event = self._next
        items: list[str] = []
        while True:
            record(event := next_event())
            if type(event) is not ScalarEvent:
                break
            text = event.value
            if event.anchor is not None or event.tag is not None:
                raise _Careful
            if text in NULLS and event.implicit[0]:
                raise _Careful
            items.append(text)
        if type(event) is not SequenceEndEvent:
            raise _Careful
        return tuple(items)

    def _node_of(self, read: list[_Event]) -> Node:
        """The node of a value of which the events ``read`` have been taken: those again,
        then the rest of it."""
        next_event = self._next
        again = iter(read)
        self._next = lambda: next(again, None) or next_event()
        try:
            return self._node(self._next())
        finally:
            self._next = next_event

    def _node(self, start: _Event) -> Node:
        """The node that begins with the event ``start``, as libyaml's composer makes it
        (``loader._Composer``), for the careful code to read."""
        if not _plain(start):  # an anchor, a tag or an alias
            raise _Unusual
        kind = type(start)
        if kind is ScalarEvent:
            tag = NULL_TAG if _null(start) else STR_TAG
            return ScalarNode(tag, start.value, start.start_mark, start.end_mark, start.style)
        next_event = self._next
        end_mark: Any  # libyaml's Mark, which the stubs allow in events but not in nodes
        if kind is SequenceStartEvent:
            items: list[Node] = []
            while type(event := next_event()) is not SequenceEndEvent:
                items.append(self._node(event))
            end_mark = event.end_mark
            return SequenceNode(SEQ_TAG, items, start.start_mark, end_mark, start.flow_style)
        pairs: list[tuple[Node, Node]] = []
        while type(event := next_event()) is not MappingEndEvent:
            pairs.append((self._node(event), self._node(next_event())))
        end_mark = event.end_mark
        return MappingNode(MAP_TAG, pairs, start.start_mark, end_mark, start.flow_style)


def _plain(event: _Event) -> bool:
    """A scalar or the start of a collection, with no anchor and no tag."""
    kind = type(event)
    if kind is ScalarEvent or kind is SequenceStartEvent or kind is MappingStartEvent:
        return event.anchor is None and event.tag is None
    return False


def _null(event: _Event) -> bool:
    """``key:`` with nothing after it, or ``~`` or ``null``, unquoted."""
    return bool(event.value in NULLS and event.implicit[0])
