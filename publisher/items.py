"""News items as they cross the stages: what a source yields and the store keeps."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Translation:
    """One language version of an item. Text is clean, HTML is sanitized."""

    lang: str  # a Babel locale identifier: "en", "ru", "pt_BR"
    title: str  # plain text, one line
    summary: str  # plain text
    body_html: str  # sanitized HTML
    url: str | None = None  # this translation's page, when the source has one


@dataclass(frozen=True, slots=True)
class FetchedItem:
    """An item as a source yields it, before the store gives it its id."""

    key: str  # the source's own stable id for the item (file base name, guid, URL)
    published: datetime  # always time-zone aware
    translations: tuple[Translation, ...]
    updated: datetime | None = None
    issuer: str | None = None  # an issuer slug of the taxonomy
    fields_of_work: tuple[str, ...] = ()  # field-of-work slugs
    countries: tuple[str, ...] = ()  # ISO 3166-1 alpha-2 codes, regions expanded
    origin: str = field(default="", compare=False)  # file or URL, for error messages

    def __post_init__(self) -> None:
        if self.published.tzinfo is None:
            raise ValueError(f"{self.key}: published must be time-zone aware")
        if not self.translations:
            raise ValueError(f"{self.key}: an item needs at least one translation")

    def item_hash(self) -> str:
        """Hash of what is shared by every translation (dates and tags)."""
        return _digest(
            {
                "published": self.published.isoformat(),
                "updated": self.updated.isoformat() if self.updated else None,
                "issuer": self.issuer,
                "fields_of_work": sorted(self.fields_of_work),
                "countries": sorted(self.countries),
            }
        )


def translation_hash(translation: Translation) -> str:
    """Hash of a translation's text: it moves only when the text really changes."""
    return _digest(
        {
            "title": translation.title,
            "summary": translation.summary,
            "body_html": translation.body_html,
            "url": translation.url,
        }
    )


def _digest(value: object) -> str:
    data = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()[:32]
