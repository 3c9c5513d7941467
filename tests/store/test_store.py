from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, select, text

from publisher.items import FetchedItem, Translation
from publisher.store import load_items, migrate, open_store, save_items
from publisher.store.schema import item_tags, metadata
from publisher.store.sources import SourceRun, latest_runs, load_state, record_run

T0 = datetime(2024, 12, 6, 9, 0, tzinfo=UTC)
TASHKENT = timezone(timedelta(hours=5))


def _item(
    key: str = "2024-12-06-tashkent-workshop",
    *,
    title: str = "Workshop",
    ru_title: str = "Семинар",
    fields: tuple[str, ...] = ("policing",),
) -> FetchedItem:
    return FetchedItem(
        key=key,
        published=datetime(2024, 12, 6, 15, 30, tzinfo=TASHKENT),
        translations=(
            Translation(lang="en", title=title, summary="S", body_html="<p>B</p>"),
            Translation(lang="ru", title=ru_title, summary="С", body_html="<p>Т</p>"),
        ),
        issuer="transnational-threats-department",
        fields_of_work=fields,
        countries=("KZ", "UZ"),
        origin="content/x.md",
    )


def test_migrations_create_exactly_the_tables_of_the_schema(engine: Engine) -> None:
    """The Alembic migrations and schema.py describe the same database."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrating_again_is_harmless(engine: Engine, store_url: str) -> None:
    """Opening an up-to-date store runs no migration and loses nothing."""
    with engine.begin() as conn:
        save_items(conn, "newsroom", [_item()], now=T0)
    migrate(engine)
    again = open_store(store_url)
    with again.connect() as conn:
        assert [i.id for i in load_items(conn)] == ["2024-12-06-tashkent-workshop"]
    again.dispose()


def test_saving_the_same_items_twice_adds_nothing(engine: Engine) -> None:
    """A second save of unchanged items counts them unchanged and writes no row."""
    with engine.begin() as conn:
        first = save_items(conn, "newsroom", [_item(), _item("other")], now=T0)
    with engine.begin() as conn:
        second = save_items(conn, "newsroom", [_item(), _item("other")], now=T0 + timedelta(1))
        stored = load_items(conn)
    assert (first.new, first.updated, first.unchanged) == (2, 0, 0)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 2)
    assert len(stored) == 2
    assert all(i.changed_at == T0 for i in stored)


def test_an_edited_translation_updates_that_translation_only(engine: Engine) -> None:
    """Editing the Russian title keeps the id and first_seen and moves only ru's changed_at."""
    later = T0 + timedelta(hours=3)
    with engine.begin() as conn:
        save_items(conn, "newsroom", [_item()], now=T0)
    with engine.begin() as conn:
        counts = save_items(conn, "newsroom", [_item(ru_title="Семинар (испр.)")], now=later)
        [item] = load_items(conn)
    assert (counts.new, counts.updated) == (0, 1)
    assert item.id == "2024-12-06-tashkent-workshop"
    assert item.first_seen == T0
    assert item.translations["ru"].title == "Семинар (испр.)"
    assert item.translations["ru"].changed_at == later
    assert item.translations["en"].changed_at == T0
    assert item.changed_at == later


def test_changed_tags_are_rewritten(engine: Engine) -> None:
    """A new field of work replaces the item's tag rows."""
    with engine.begin() as conn:
        save_items(conn, "newsroom", [_item()], now=T0)
        save_items(conn, "newsroom", [_item(fields=("cyber-ict-security",))], now=T0)
        tags = {tuple(r) for r in conn.execute(select(item_tags.c.kind, item_tags.c.value))}
    assert tags == {("field", "cyber-ict-security"), ("country", "KZ"), ("country", "UZ")}


def test_dates_come_back_aware_and_equal(engine: Engine) -> None:
    """A +05:00 publication time is stored and read back as the same instant, in UTC."""
    with engine.begin() as conn:
        save_items(conn, "newsroom", [_item()], now=T0)
        [item] = load_items(conn)
    assert item.published == datetime(2024, 12, 6, 10, 30, tzinfo=UTC)
    assert item.published.tzinfo is not None


def test_ids_are_readable_stable_and_unique_across_sources(engine: Engine) -> None:
    """The same key in two sources gets two ids; a URL key gives an id from its path."""
    url = "https://www.example.org/secretariat/582061?lang=en"
    with engine.begin() as conn:
        save_items(conn, "a", [_item("tashkent"), _item(url)], now=T0)
        save_items(conn, "b", [_item("tashkent")], now=T0)
        ids = sorted(i.id for i in load_items(conn))
        save_items(conn, "b", [_item("tashkent", title="edit")], now=T0)
        assert sorted(i.id for i in load_items(conn)) == ids
    assert "tashkent" in ids
    assert "secretariat-582061-lang-en" in ids
    [suffixed] = [i for i in ids if i.startswith("tashkent-")]
    assert len(suffixed) == len("tashkent-") + 10


def test_source_state_is_kept_and_a_failure_keeps_the_old_state(engine: Engine) -> None:
    """A successful run saves the ETag; a failed run records its error but keeps the ETag."""
    ok = SourceRun("feed", T0, T0, 1, 0, 0, False, None, ())
    failed = SourceRun(
        "feed", T0 + timedelta(1), T0 + timedelta(1), 0, 0, 0, False, "feed: HTTP 500", ("x",)
    )
    with engine.begin() as conn:
        record_run(conn, ok, state={"etag": '"v1"'})
        record_run(conn, failed, state=None)
        assert load_state(conn, "feed") == {"etag": '"v1"'}
        [latest] = latest_runs(conn)
    assert latest.error == "feed: HTTP 500"
    assert latest.problems == ("x",)


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The default SQLite store uses write-ahead logging so readers never wait."""
    engine = open_store(f"sqlite:///{tmp_path / 'var' / 'publisher.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()
