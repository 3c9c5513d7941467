"""``publisher feeds build``: every standard feed as a static file, plus OPML per locale.

Layout under the output directory, the same as the web app's URLs under ``/feeds/``::

    <locale>/all.atom|rss|json
    <locale>/field/<slug>.atom|rss|json
    <locale>/country/<CODE>.atom|rss|json
    <locale>/feeds.opml

A manifest (``.manifest.json``) keeps, per feed, a signature of what it was built
from (the ids and change times of its items, and the locale's fingerprint). A feed
whose signature has not moved is not built again; a built feed is written only when
its bytes differ, atomically, so a web server never serves half a file and a file's
modification time is when its content last changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from xml.sax.saxutils import quoteattr

from pyuca import Collator
from sqlalchemy import Connection, Engine, select

from publisher.feeds.build import FeedBuilder
from publisher.feeds.spec import FeedFormat, FeedSpec, standard_specs
from publisher.rendering.formatting import country_name, field_of_work_label
from publisher.store.schema import items

log = logging.getLogger(__name__)

MANIFEST = ".manifest.json"


@dataclass(slots=True)
class BuildReport:
    written: list[str] = field(default_factory=list)  # paths relative to the output
    unchanged: int = 0  # built again, same bytes
    skipped: int = 0  # not built: nothing they depend on moved

    @property
    def changed_feeds(self) -> list[str]:
        return [path for path in self.written if not path.endswith(".opml")]


def build_static(
    builder: FeedBuilder,
    engine: Engine,
    out_dir: Path,
    *,
    locales: list[str] | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Build every standard feed of every locale into ``out_dir``; report what changed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {} if force else _read_manifest(out_dir)
    fresh: dict[str, str] = {}
    report = BuildReport()
    chosen = locales or builder.locales
    with engine.connect() as conn:
        selections = builder.select_ids(conn, standard_specs(builder.taxonomy))
        stamps = _stamps(conn, {i for ids in selections.values() for i in ids})
        # What each feed's signature says besides the locale's fingerprint.
        contents = {spec: _contents(ids, stamps) for spec, ids in selections.items()}
        plans: list[tuple[str, FeedSpec]] = []
        needed: set[str] = set()
        for locale in chosen:
            fingerprint = builder.fingerprint(locale)
            present = _files_under(out_dir / locale)
            for spec, ids in selections.items():
                signature = _signature(fingerprint, contents[spec])
                key = f"{locale}/{spec.key}"
                fresh[key] = signature
                files_present = all(spec.path(fmt) in present for fmt in FeedFormat)
                if manifest.get(key) == signature and files_present:
                    report.skipped += len(FeedFormat)
                    continue
                plans.append((locale, spec))
                needed.update(ids)
        loaded = builder.load(conn, needed) if needed else {}
    for done, (locale, spec) in enumerate(plans, start=1):
        if progress is not None:
            progress(done, len(plans))
        for fmt in FeedFormat:
            data = builder.document(locale, spec, fmt, selections[spec], loaded)
            relative = f"{locale}/{spec.path(fmt)}"
            if _write_if_changed(out_dir / relative, data):
                report.written.append(relative)
            else:
                report.unchanged += 1
    for locale in chosen:
        relative = f"{locale}/feeds.opml"
        if _write_if_changed(out_dir / relative, opml(builder, locale)):
            report.written.append(relative)
    if not force:
        fresh = {**manifest, **fresh}
    _write_if_changed(out_dir / MANIFEST, json.dumps(fresh, sort_keys=True, indent=0).encode())
    return report


def _stamps(conn: Connection, ids: set[str]) -> dict[str, str]:
    """Per item, what moves when anything a feed shows of it changes."""
    if not ids:
        return {}
    query = select(items.c.id, items.c.changed_at, items.c.entry_id).where(
        items.c.id.in_(sorted(ids))
    )
    return {row.id: f"{row.changed_at.isoformat()} {row.entry_id}" for row in conn.execute(query)}


def _contents(ids: tuple[str, ...], stamps: dict[str, str]) -> str:
    """A feed's items and their stamps, as its signature holds them after the fingerprint."""
    return "".join(f"\n{i} {stamps.get(i)}" for i in ids)


def _signature(fingerprint: str, contents: str) -> str:
    return hashlib.sha256(f"{fingerprint}{contents}".encode()).hexdigest()[:32]


def _files_under(directory: Path) -> set[str]:
    """The files under ``directory``, as paths relative to it: one listing per folder
    instead of a look-up per feed file."""
    found: set[str] = set()
    for folder, _, names in os.walk(directory):
        relative = Path(folder).relative_to(directory).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        found.update(f"{prefix}{name}" for name in names)
    return found


def _read_manifest(out_dir: Path) -> dict[str, str]:
    path = out_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable, every feed is built again: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless it holds those bytes already."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        temporary.chmod(0o644)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return True


def opml(builder: FeedBuilder, locale: str) -> bytes:
    """OPML 2.0 listing a locale's Atom feeds: all news, per field of work, per country."""
    catalog = builder.catalog(locale)
    gettext = catalog.translations.gettext
    organisation = builder.settings.organisation
    atom = FeedFormat.ATOM

    def outline(spec: FeedSpec, text: str) -> str:
        return (
            f"      <outline type={quoteattr('rss')} text={quoteattr(text)} "
            f"title={quoteattr(text)} xmlUrl={quoteattr(builder.url(locale, spec, atom))} "
            f"htmlUrl={quoteattr(builder.settings.base_url + '/')}/>"
        )

    fields = [
        outline(
            FeedSpec(fields=(slug,)),
            field_of_work_label(slug, taxonomy=builder.taxonomy, catalog=catalog),
        )
        for slug in builder.taxonomy.fields_of_work
    ]
    # Sorted by the Unicode Collation Algorithm: "État…" among the E's, not after "Z".
    countries = sorted(
        (
            (
                country_name(code, taxonomy=builder.taxonomy, catalog=catalog),
                FeedSpec(countries=(code,)),
            )
            for code in builder.taxonomy.countries
        ),
        key=lambda pair: (_sort_key(pair[0]), pair[1]),
    )
    title = gettext("%(organisation)s: feeds") % {"organisation": organisation}
    fields_heading = gettext("Fields of work")
    countries_heading = gettext("Countries")
    lines = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{_text(title)}</title>",
        "  </head>",
        "  <body>",
        outline(
            FeedSpec(), gettext("%(organisation)s: all news") % {"organisation": organisation}
        ).replace("      ", "    ", 1),
        f"    <outline text={quoteattr(fields_heading)}>",
        *fields,
        "    </outline>",
        f"    <outline text={quoteattr(countries_heading)}>",
        *(outline(spec, name) for name, spec in countries),
        "    </outline>",
        "  </body>",
        "</opml>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


@cache
def _collator() -> Collator:
    return Collator()


@cache
def _sort_key(name: str) -> tuple[int, ...]:
    """The collation key of a country name: pyuca takes most of an OPML file to make one,
    and the names are few (each country's, in each language), so each is made once."""
    key: tuple[int, ...] = _collator().sort_key(name)
    return key


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
