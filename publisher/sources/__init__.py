"""Sources: where news items come from. One module per kind, behind one protocol.

A source yields :class:`~publisher.items.FetchedItem` objects and the problems it met.
A problem with one item (a broken file, a page missing its labels) is reported and the
rest of the source still counts; a problem with the whole source (a 500, a timeout)
raises :class:`~publisher.errors.SourceError`, and the collector goes on with the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from publisher.items import FetchedItem


@dataclass(frozen=True, slots=True)
class SourceResult:
    items: tuple[FetchedItem, ...]
    # Per-item problems, each naming the file or URL and what is wrong.
    problems: tuple[str, ...] = ()
    # What the source wants back next time (ETag, Last-Modified); kept by the store.
    state: Mapping[str, str] = field(default_factory=dict)
    # True when the source answered "nothing changed" (HTTP 304).
    not_modified: bool = False


class Source(Protocol):
    """One configured source of news items."""

    @property
    def name(self) -> str: ...

    async def fetch(self, state: Mapping[str, str]) -> SourceResult:
        """Read the source. ``state`` is what the previous result's ``state`` was."""
        ...
