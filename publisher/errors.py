"""One error hierarchy for everything the publisher reports to a person."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class PublisherError(Exception):
    """Root of every error the publisher raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a file, located the way editors and compilers print it."""

    path: str
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class ValidationFailed(PublisherError):
    """A file was read and found wrong; ``problems`` lists every problem at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))


class SettingsError(PublisherError):
    """``publisher.toml`` or a ``PUBLISHER_*`` variable is wrong."""


class SourceError(PublisherError):
    """A source could not be read; the message names the source and what went wrong."""


class StoreError(PublisherError):
    """The database could not be opened or migrated."""
