from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from sqlalchemy import Engine

from publisher.collect import collect
from publisher.settings import Settings, load_settings
from publisher.store import load_items
from publisher.store.sources import latest_runs, load_state
from publisher.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parent.parent
TASHKENT = "2024-12-06-tashkent-workshop"


def _settings(tmp_path: Path, database_url: str, *, broken_feed: bool = False) -> Settings:
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    text = (
        f'database_url = "{database_url}"\n'
        '[http]\nretries = 0\ntimeout = "2s"\n'
        f'[[sources]]\nname = "newsroom"\nkind = "folder"\npath = "{content}"\n'
    )
    if broken_feed:
        # Port 9 (discard) is closed on loopback: the connection is refused at once.
        text += '[[sources]]\nname = "wire"\nkind = "feed"\nurl = "http://127.0.0.1:9/rss"\n'
    path = tmp_path / "publisher.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={})


def test_collecting_twice_adds_nothing_and_an_edit_updates(tmp_path: Path, engine: Engine) -> None:
    """The sample content is stored once; a second pass finds it unchanged; an edit updates."""
    settings = _settings(tmp_path, str(engine.url))
    taxonomy = load_taxonomy()
    [first] = asyncio.run(collect(settings, engine, taxonomy=taxonomy))
    assert first.ok, first
    assert first.new >= 14 and first.updated == 0
    [second] = asyncio.run(collect(settings, engine, taxonomy=taxonomy))
    assert (second.new, second.updated, second.unchanged) == (0, 0, first.new)

    english = tmp_path / "content" / f"{TASHKENT}.en.md"
    english.write_text(
        english.read_text(encoding="utf-8").replace("Tashkent", "Toshkent", 1), encoding="utf-8"
    )
    [third] = asyncio.run(collect(settings, engine, taxonomy=taxonomy))
    assert (third.new, third.updated, third.unchanged) == (0, 1, first.new - 1)
    with engine.connect() as conn:
        items = {item.id: item for item in load_items(conn)}
    assert len(items) == first.new
    workshop = items[TASHKENT]
    assert set(workshop.translations) == {"en", "ru"}
    assert workshop.translations["en"].changed_at > workshop.translations["ru"].changed_at


def test_a_broken_source_is_reported_and_the_others_are_collected(
    tmp_path: Path, engine: Engine
) -> None:
    """A feed that cannot be reached gets an error; the folder source still fills the store."""
    settings = _settings(tmp_path, str(engine.url), broken_feed=True)
    reports = {
        r.source: r for r in asyncio.run(collect(settings, engine, taxonomy=load_taxonomy()))
    }
    assert reports["newsroom"].ok and reports["newsroom"].new >= 14
    assert reports["wire"].error is not None
    assert "wire" in reports["wire"].error and "127.0.0.1:9" in reports["wire"].error
    with engine.connect() as conn:
        runs = {run.source: run for run in latest_runs(conn)}
        assert load_state(conn, "wire") == {}
        assert len(load_items(conn)) == reports["newsroom"].new
    assert runs["wire"].error == reports["wire"].error
    assert runs["newsroom"].error is None
