"""``publisher feeds build``: files written only when their bytes change, a manifest
that saves work and never correctness."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from publisher.cli import cli
from publisher.feeds import FeedBuilder, FeedFormat, build
from publisher.feeds.spec import standard_specs
from publisher.feeds.static import MANIFEST, build_static
from publisher.settings import Settings
from publisher.taxonomy import Taxonomy
from tests.feeds.conftest import (
    BASE_URL,
    EDITED_AT,
    SENDER,
    SITE_LOCALES,
    TASHKENT,
    Site,
    collect_at,
    edit_english,
    feed_files,
    make_settings,
    parse_json_feed,
)

# Files are set back to this modification time (2001) before a build, so that any
# rewrite shows, however coarse the file system's clock.
LONG_AGO_NS = 1_000_000_000 * 10**9

Snapshot = dict[str, tuple[bytes, int]]


def _age(out: Path) -> Snapshot:
    """Set every file's mtime back to LONG_AGO_NS; return each file's bytes and mtime."""
    for path in out.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(LONG_AGO_NS, LONG_AGO_NS))
    return _snapshot(out)


def _snapshot(out: Path) -> Snapshot:
    return {
        path.relative_to(out).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def _changed(before: Snapshot, after: Snapshot) -> set[str]:
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


def _feed_count(builder: FeedBuilder, locales: int) -> int:
    return locales * len(list(standard_specs(builder.taxonomy))) * len(FeedFormat)


def test_a_second_build_writes_nothing(site: Site, tmp_path: Path) -> None:
    """Building again over an unchanged store skips every feed and leaves every file,
    the manifest included, with its bytes and modification time."""
    out = site.copy(tmp_path / "feeds")
    before = _age(out)
    report = build_static(site.builder, site.engine, out)
    assert report.written == []
    assert (report.unchanged, report.skipped) == (
        0,
        _feed_count(site.builder, len(site.builder.locales)),
    )
    assert _snapshot(out) == before


def test_an_edit_rewrites_only_the_feeds_showing_it(
    collected: Engine,
    settings: Settings,
    content_dir: Path,
    taxonomy: Taxonomy,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """After an edit of an item's English text, the files rewritten are exactly those of
    the en feeds holding the item; the ru feeds holding it are built again but keep
    their bytes (they show the Russian text), and every other feed is not even built.
    Before the edit, the site built from another store with the same content and clock
    is up to date for this one: nothing is built."""
    site: Site = request.getfixturevalue(f"{collected.dialect.name}_site")
    builder = FeedBuilder(make_settings(content_dir, locales=SITE_LOCALES), taxonomy=taxonomy)
    out = site.copy(tmp_path / "feeds")
    assert build_static(builder, collected, out).skipped == _feed_count(builder, 2)
    holding = sorted(
        path.removesuffix(".json")
        for path, data in feed_files(out).items()
        if path.endswith(".json")
        and any(
            item["id"].startswith(f"tag:news.example.org,2026:item/{TASHKENT}/")
            for item in parse_json_feed(data)["items"]
        )
    )
    # all, field/policing and the five countries of Central Asia, in each locale
    assert len(holding) == 2 * 7
    before = _age(out)
    edit_english(content_dir)
    collect_at(settings, collected, EDITED_AT)
    report = build_static(builder, collected, out)
    rewritten = {
        f"{feed}.{fmt}" for feed in holding if not feed.startswith("ru/") for fmt in FeedFormat
    }
    assert sorted(report.written) == sorted(rewritten)
    assert report.unchanged == 7 * len(FeedFormat)  # the ru feeds holding it
    assert report.skipped == _feed_count(builder, 2) - len(holding) * len(FeedFormat)
    assert _changed(before, _snapshot(out)) == rewritten | {MANIFEST}


def test_force_builds_everything_but_writes_only_what_differs(site: Site, tmp_path: Path) -> None:
    """A file changed behind the manifest's back is trusted by a normal build; --force
    builds every feed again and rewrites that file only, leaving the others' mtimes."""
    out = site.copy(tmp_path / "feeds")
    tampered = out / "en" / "all.rss"
    original = tampered.read_bytes()
    tampered.write_bytes(original.replace(b"<channel>", b"<channel><!-- edited by hand -->"))
    before = _age(out)
    assert build_static(site.builder, site.engine, out).written == []
    report = build_static(site.builder, site.engine, out, locales=["en"], force=True)
    assert report.written == ["en/all.rss"]
    assert (report.unchanged, report.skipped) == (_feed_count(site.builder, 1) - 1, 0)
    assert tampered.read_bytes() == original
    assert _changed(before, _snapshot(out)) - {MANIFEST} == {"en/all.rss"}


def test_a_corrupt_manifest_is_logged_and_everything_rebuilt(
    site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreadable .manifest.json is reported in the log; every feed is built again,
    damaged files are repaired, intact ones left alone, and a sound manifest is written."""
    out = site.copy(tmp_path / "feeds")
    (out / MANIFEST).write_text('{"en/all": ', encoding="utf-8")
    truncated, deleted = out / "en" / "field" / "policing.json", out / "en" / "country" / "UZ.atom"
    truncated.write_bytes(truncated.read_bytes()[:100])
    deleted.unlink()
    before = _age(out)
    with caplog.at_level(logging.WARNING, logger="publisher.feeds.static"):
        report = build_static(site.builder, site.engine, out, locales=["en"])
    [warning] = [r for r in caplog.records if r.name == "publisher.feeds.static"]
    assert warning.levelno == logging.WARNING
    assert MANIFEST in warning.getMessage() and "built again" in warning.getMessage()
    assert sorted(report.written) == ["en/country/UZ.atom", "en/field/policing.json"]
    assert (report.unchanged, report.skipped) == (_feed_count(site.builder, 1) - 2, 0)
    built, original = feed_files(out), site.files()
    assert {p: d for p, d in built.items() if p.startswith("en/")} == {
        p: d for p, d in original.items() if p.startswith("en/")
    }
    assert _changed(before, _snapshot(out)) == {
        "en/country/UZ.atom",
        "en/field/policing.json",
        MANIFEST,
    }
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    sound = json.loads((site.out / MANIFEST).read_text(encoding="utf-8"))
    assert manifest == {key: value for key, value in sound.items() if key.startswith("en/")}


def test_the_command_builds_into_out_and_prints_the_counts(
    sqlite_site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`publisher feeds build --out DIR`, with the publisher.toml of the current directory,
    exits 0, prints how many feeds it wrote, writes the same bytes as the library, and
    on a second run writes nothing."""
    # On SQLite only: the command keeps its engine to the end of the process, which a
    # test process outlives (psycopg warns about the open connection); the build itself
    # is tested on both databases above.
    site = sqlite_site
    for name in ("PUBLISHER_CONFIG", "PUBLISHER_DATABASE_URL", "PUBLISHER_LOCALES"):
        monkeypatch.delenv(name, raising=False)
    database_url = site.engine.url.render_as_string(hide_password=False)
    (tmp_path / "publisher.toml").write_text(
        f'base_url = "{BASE_URL}"\n'
        f'database_url = "{database_url}"\n'
        'locales = ["en"]\n'
        f'[sender]\nfrom = "{SENDER}"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    count = _feed_count(site.builder, 1)
    runner = CliRunner()
    first = runner.invoke(cli, ["feeds", "build", "--out", "out"])
    assert first.exit_code == 0, first.output
    assert f"Feeds in out: {count} written, 0 unchanged" in first.output
    written = feed_files(tmp_path / "out")
    assert written == {p: d for p, d in site.files().items() if p.startswith("en/")}
    second = runner.invoke(cli, ["feeds", "build", "--out", "out"])
    assert second.exit_code == 0, second.output
    assert f"Feeds in out: 0 written, {count} unchanged" in second.output


NEW_ITEM = """\
---
title: "Election observers in Moldova meet again"
published: 2025-03-05T10:00:00+00:00
issuer: mission-to-moldova
fields_of_work: [elections]
countries: [MD]
summary: "Observers met again."
---

Observers met again to <b>compare</b> their findings & plan.
"""
EDIT = b"The workshop materials are available on request."


def test_a_warm_builder_rebuilds_what_a_new_builder_builds(
    collected: Engine,
    settings: Settings,
    content_dir: Path,
    taxonomy: Taxonomy,
    tmp_path: Path,
) -> None:
    """After a new item and an edit, the rebuild by the builder of the first build (every
    entry written and kept) writes byte for byte what a new builder writes into an empty
    folder, manifest included: the edited item's entries are written again."""
    builder = FeedBuilder(make_settings(content_dir, locales=SITE_LOCALES), taxonomy=taxonomy)
    out = tmp_path / "feeds"
    build_static(builder, collected, out)
    before = feed_files(out)
    edit_english(content_dir)
    (content_dir / "2025-03-05-observers-meet-again.en.md").write_text(NEW_ITEM, encoding="utf-8")
    collect_at(settings, collected, EDITED_AT)
    report = build_static(builder, collected, out)
    fresh = tmp_path / "fresh"
    build_static(FeedBuilder(builder.settings, taxonomy=taxonomy), collected, fresh)
    assert feed_files(out) == feed_files(fresh)
    assert (out / MANIFEST).read_bytes() == (fresh / MANIFEST).read_bytes()
    for fmt in FeedFormat:
        path = f"en/all.{fmt}"
        assert path in report.written
        assert EDIT not in before[path] and EDIT in (out / path).read_bytes(), path
        assert b"Observers met again" in (out / path).read_bytes(), path
    assert "en/country/MD.atom" in report.written and "en/field/policing.atom" in report.written


def test_the_entry_cache_keeps_to_its_size(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for a few entries only, the builder drops the least recently used ones,
    counts what it keeps, and writes the same bytes."""
    monkeypatch.setattr(build, "ENTRY_CACHE_BYTES", 40_000)
    builder = FeedBuilder(site.settings, taxonomy=site.builder.taxonomy)
    out = tmp_path / "feeds"
    build_static(builder, site.engine, out)
    assert feed_files(out) == site.files()
    kept = list(builder._entries.values())  # the cache's own records: what is counted
    assert 1 <= len(kept) < 20
    assert builder._cached_bytes == sum(record.size for record in kept)
    assert builder._cached_bytes <= 40_000 or len(kept) == 1
