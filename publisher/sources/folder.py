"""The ``folder`` source: Markdown files with YAML front matter, one per item and language.

Hugo style (DESIGN.md, "Items in a folder source"): ``2024-12-06-tashkent-workshop.en.md``
and ``2024-12-06-tashkent-workshop.ru.md`` are two translations of one item. The item's key
is the front matter's ``id``, else the file's base name; a translation that gives no ``id``
takes the one its siblings (same folder, same base name) give. The first translation in
the order English, then by language, is authoritative for what all translations share
(dates, issuer, tags); a translation that states something else is reported.

The front matter is read as written, never constructed the YAML 1.1 way (``NO`` stays
Norway, a date is text parsed as ISO 8601; see :mod:`publisher.sources._frontmatter`),
and each value keeps its line and column for messages.

A broken file is skipped with one ``path:line:column: message`` line per problem (``path:
message`` when there is no position); every other file still counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from babel import Locale, UnknownLocaleError

from publisher.cleaning import MAX_SUMMARY, clean_text, render_markdown, summary_from_html
from publisher.errors import SourceError
from publisher.items import FetchedItem, Translation
from publisher.settings import FolderSourceSettings
from publisher.sources import SourceResult
from publisher.sources._frontmatter import FrontMatter, split_front_matter
from publisher.taxonomy import Taxonomy

# What all translations of an item share; the authoritative translation's is used.
_SHARED = ("published", "updated", "issuer", "fields_of_work", "countries")


class FolderSource:
    """Items from a folder of ``NAME.LANG.md`` files (read recursively, in sorted order)."""

    def __init__(self, settings: FolderSourceSettings, *, taxonomy: Taxonomy) -> None:
        self._settings = settings
        self._taxonomy = taxonomy

    @property
    def name(self) -> str:
        return self._settings.name

    async def fetch(self, state: Mapping[str, str]) -> SourceResult:
        """Read every file. No ``state`` is kept: the store notices edits by content hash."""
        return await asyncio.to_thread(self._read)

    def _read(self) -> SourceResult:
        root = self._settings.path
        if not root.is_dir():
            raise SourceError(f"source {self.name!r}: {root} is not a folder")
        problems: list[str] = []
        entries: list[_Entry] = []
        for path in _markdown_files(root):
            reader = _FileReader(path, self._taxonomy)
            entry = reader.read()
            problems.extend(reader.problems)
            if entry is not None:
                entries.append(entry)
        items = _group(entries, problems)
        return SourceResult(items=items, problems=tuple(problems))


def _markdown_files(root: Path) -> list[Path]:
    # Hidden files and folders (.git, editors' backups) are not content.
    return sorted(
        path
        for path in root.rglob("*.md")
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(root).parts)
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    """One file read without problems: one translation and what it says about its item."""

    path: Path
    base: str  # the file name without ".LANG.md"
    id: str | None  # the front matter's id, when it gives one
    translation: Translation
    published: datetime
    updated: datetime | None
    issuer: str | None
    fields_of_work: tuple[str, ...]
    countries: tuple[str, ...]
    stated: Mapping[str, object]  # the shared keys this file gives, comparable values
    where: Mapping[str, str]  # key → "path:line:column" of its value

    @property
    def lang(self) -> str:
        return self.translation.lang


class _FileReader:
    """Reads one file, collecting every problem in it rather than stopping at the first."""

    def __init__(self, path: Path, taxonomy: Taxonomy) -> None:
        self.path = path
        self._front = FrontMatter(path, taxonomy)

    @property
    def problems(self) -> list[str]:
        """Every problem met, in the order of the file (those without a position first)."""
        return self._front.problems

    def read(self) -> _Entry | None:
        front = self._front
        base, lang = self._name()
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            front.report(f"not UTF-8 text (byte {exc.start}); expected a UTF-8 Markdown file")
            return None
        except OSError as exc:
            front.report(f"cannot read the file: {exc.strerror or exc}")
            return None
        parts = split_front_matter(text)
        if parts is None:
            front.report(
                "no YAML front matter; expected the file to start with a '---' line, "
                "the front matter, and a closing '---' line",
                line=1,
                column=1,
            )
            return None
        front_matter, markdown = parts
        if not front.compose(front_matter):
            return None
        raw_title = front.text("title", required=True)
        title = clean_text(raw_title or "")
        summary = clean_text(front.text("summary") or "", limit=MAX_SUMMARY)
        item_id = clean_text(front.text("id") or "") or None
        published = front.date("published", required=True)
        updated = front.date("updated")
        issuer = front.issuer()
        fields = front.fields_of_work()
        countries = front.countries()
        if raw_title is not None and not title:
            front.report("the title is empty; expected the item's title", front.nodes["title"])
        if published and updated and updated < published:
            front.report(
                f"updated {updated.isoformat()} is earlier than published "
                f"{published.isoformat()}; expected a later time or no 'updated'",
                front.nodes["updated"],
            )
        if front.has_problems or lang is None or published is None:
            return None
        body_html = render_markdown(markdown)
        translation = Translation(
            lang=lang,
            title=title,
            summary=summary or summary_from_html(body_html),
            body_html=body_html,
        )
        stated: dict[str, object] = {"published": published}
        for key, value in (("updated", updated), ("issuer", issuer)):
            if value is not None:
                stated[key] = value
        for key, codes in (("fields_of_work", fields), ("countries", countries)):
            if codes is not None:
                stated[key] = frozenset(codes)
        return _Entry(
            path=self.path,
            base=base,
            id=item_id,
            translation=translation,
            published=published,
            updated=updated,
            issuer=issuer,
            fields_of_work=fields or (),
            countries=countries or (),
            stated=stated,
            where={key: front.where(node) for key, node in front.nodes.items()},
        )

    def _name(self) -> tuple[str, str | None]:
        base, dot, lang = self.path.name.removesuffix(".md").rpartition(".")
        if not dot or not base:
            self._front.report(
                "expected NAME.LANG.md, a language such as en, ru or pt_BR before .md"
            )
            return self.path.name.removesuffix(".md"), None
        try:
            # Babel spells "pt-BR" and "PT_br" as "pt_BR".
            return base, str(Locale.parse(lang.replace("-", "_")))
        except (UnknownLocaleError, ValueError):
            self._front.report(
                f"{lang!r} is not a language Babel knows; "
                "expected NAME.LANG.md, a language such as en, ru or pt_BR before .md"
            )
            return base, None


def _authority(entry: _Entry) -> tuple[bool, str, str]:
    """English first, then by language: the first translation speaks for the item."""
    return (entry.lang != "en", entry.lang, str(entry.path))


def _group(entries: list[_Entry], problems: list[str]) -> tuple[FetchedItem, ...]:
    """The translations of each key as one item, checking that they agree."""
    entries = sorted(entries, key=_authority)
    sibling_ids: dict[tuple[Path, str], _Entry] = {}
    for entry in entries:
        if entry.id is not None:
            sibling_ids.setdefault((entry.path.parent, entry.base), entry)
    groups: dict[str, list[_Entry]] = {}
    for entry in entries:
        sibling = sibling_ids.get((entry.path.parent, entry.base))
        if entry.id is not None and sibling is not None and entry.id != sibling.id:
            problems.append(
                f"{entry.where['id']}: id {entry.id!r} differs from {sibling.id!r} in "
                f"{sibling.path}; expected the translations of one item to share one id"
            )
            continue
        key = entry.id or (sibling.id if sibling is not None else None) or entry.base
        groups.setdefault(key, []).append(entry)
    items = []
    for key in sorted(groups):
        first, *others = groups[key]
        kept = [first]
        for entry in others:
            same = next((seen for seen in kept if seen.lang == entry.lang), None)
            if same is not None:
                problems.append(
                    f"{entry.path}: a second {entry.lang!r} translation of item {key!r}; "
                    f"expected one file per language (the first is {same.path})"
                )
                continue
            problems.extend(_disagreements(first, entry))
            kept.append(entry)
        items.append(
            FetchedItem(
                key=key,
                published=first.published,
                updated=first.updated,
                issuer=first.issuer,
                fields_of_work=first.fields_of_work,
                countries=first.countries,
                translations=tuple(entry.translation for entry in kept),
                origin=str(first.path),
            )
        )
    return tuple(items)


def _disagreements(first: _Entry, other: _Entry) -> list[str]:
    lines = []
    for key in _SHARED:
        if key in other.stated and other.stated[key] != first.stated.get(key):
            lines.append(
                f"{other.where[key]}: {key} {_show(other.stated[key])} differs from "
                f"{_show(first.stated.get(key))} in {first.path}, which is used"
            )
    return lines


def _show(value: object) -> str:
    if value is None:
        return "(not given)"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset):
        return "[" + ", ".join(sorted(value)) + "]"
    return repr(value)
