"""The sample content collected with a pinned clock, and the feeds built from it.

Nothing here reads the clock: collections run at :data:`COLLECTED_AT` (after the newest
sample item) and, for edits, :data:`EDITED_AT`, so every built feed is the same bytes
on every run and on both databases.

Building every feed of every locale takes seconds, so the built site is made once per
session, on a store of its own that no test changes (:func:`site`). Tests that edit
the content or the store use the per-test ``engine`` (``tests/conftest.py``) instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from publisher.collect import collect
from publisher.feeds import FeedBuilder
from publisher.feeds.static import MANIFEST, build_static
from publisher.settings import FolderSourceSettings, Settings
from publisher.store import open_store
from publisher.store.database import normalize_url
from publisher.taxonomy import Taxonomy, load_taxonomy
from tests.conftest import PG_ENV

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "content"
BASE_URL = "https://news.example.org"
SENDER = "OSCE News <news@example.org>"
COLLECTED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EDITED_AT = datetime(2025, 3, 8, 12, 0, tzinfo=UTC)
# An item of the sample content in English and Russian: policing, five countries.
TASHKENT = "2024-12-06-tashkent-workshop"
SITE_LOCALES = ["en", "ru"]


def make_settings(content: Path, **changes: Any) -> Settings:
    """The feed tests' deployment: our base URL and sender, the sample's folder source,
    the default settings' locales unless ``changes`` say otherwise."""
    return Settings(
        base_url=BASE_URL,
        sender={"from": SENDER},
        sources=[FolderSourceSettings(name="newsroom", kind="folder", path=content)],
        **changes,
    )


def collect_at(settings: Settings, engine: Engine, at: datetime) -> None:
    """Collect every source into ``engine`` with the clock stopped at ``at``."""
    reports = asyncio.run(collect(settings, engine, taxonomy=load_taxonomy(), clock=lambda: at))
    assert reports and all(report.ok for report in reports), reports


def edit_english(content: Path, item: str = TASHKENT) -> None:
    """Add a sentence to the English text of ``item`` in the content folder ``content``."""
    path = content / f"{item}.en.md"
    path.write_text(
        path.read_text(encoding="utf-8") + "\nThe workshop materials are available on request.\n",
        encoding="utf-8",
    )


def parse_xml_feed(data: bytes) -> Any:
    """feedparser's reading of an Atom or RSS document, as a reader gets it.

    Sanitizing is off: feedparser would otherwise strip scripts itself and hide what
    the feed really says; relative URIs are left alone (there are none, and it is slow).
    """
    return feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)


def parse_json_feed(data: bytes) -> dict[str, Any]:
    document = json.loads(data)
    assert isinstance(document, dict)
    return document


def feed_files(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` but the manifest and temporary files, by relative path."""
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


@dataclass(frozen=True)
class Site:
    """The sample content's feeds as ``publisher feeds build`` wrote them."""

    builder: FeedBuilder
    engine: Engine  # the store they were built from; tests only read it
    out: Path

    @property
    def settings(self) -> Settings:
        return self.builder.settings

    def files(self) -> dict[str, bytes]:
        return feed_files(self.out)

    def copy(self, target: Path) -> Path:
        """A copy of the output (manifest included) that a test may build into."""
        shutil.copytree(self.out, target)
        return target


def _build_site(url: str, tmp: Path, **changes: Any) -> Iterator[Site]:
    engine = open_store(url)
    try:
        settings = make_settings(SAMPLE, **changes)
        collect_at(settings, engine, COLLECTED_AT)
        builder = FeedBuilder(settings, taxonomy=load_taxonomy())
        out = tmp / "feeds"
        report = build_static(builder, engine, out)
        assert sorted(report.written) == sorted(feed_files(out)), "the first build writes all"
        yield Site(builder, engine, out)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def full_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Every standard feed of every locale of the default settings, from SQLite."""
    tmp = tmp_path_factory.mktemp("full-site")
    yield from _build_site(f"sqlite:///{tmp / 'publisher.db'}", tmp)


@pytest.fixture(scope="session")
def sqlite_site(full_site: Site, tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The en and ru part of :func:`full_site` (copied, not built again), with a
    builder of these two locales."""
    out = tmp_path_factory.mktemp("sqlite-site") / "feeds"
    for locale in SITE_LOCALES:
        shutil.copytree(full_site.out / locale, out / locale)
    shutil.copy2(full_site.out / MANIFEST, out / MANIFEST)
    settings = full_site.settings.model_copy(update={"locales": SITE_LOCALES})
    return Site(FeedBuilder(settings, taxonomy=full_site.builder.taxonomy), full_site.engine, out)


@pytest.fixture(scope="session")
def postgresql_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The en and ru feeds, from a PostgreSQL database of their own (the per-test
    stores reset the shared one)."""
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(f"{PG_ENV} is not set: the PostgreSQL variant of this test is skipped")
    admin_url = normalize_url(admin)
    name = f"publisher_feeds_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        tmp = tmp_path_factory.mktemp("postgresql-site")
        yield from _build_site(url, tmp, locales=SITE_LOCALES)
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def site(request: pytest.FixtureRequest) -> Site:
    """The en and ru feeds of the sample, built once per session on each database.

    Two locales, not nine: a fifth of the PostgreSQL build, and the copies tests build
    into stay small; :func:`full_site` has them all.
    """
    built: Site = request.getfixturevalue(f"{request.param}_site")
    return built


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """A copy of the sample content that a test may edit."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "content"))


@pytest.fixture
def settings(content_dir: Path) -> Settings:
    """The default locales, base URL https://news.example.org, sender OSCE News."""
    return make_settings(content_dir)


@pytest.fixture
def builder(settings: Settings, taxonomy: Taxonomy) -> FeedBuilder:
    return FeedBuilder(settings, taxonomy=taxonomy)


@pytest.fixture
def collected(engine: Engine, settings: Settings) -> Engine:
    """The per-test store with the sample content (the ``content_dir`` copy) collected."""
    collect_at(settings, engine, COLLECTED_AT)
    return engine
