"""A web app over a migrated store, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from publisher.settings import Settings
from publisher.store import create_store_engine
from publisher.web import create_app

SECRET = "test-secret-key"
OLD_SECRET = "previous-secret-key"
NOW = datetime(2024, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a real secret key and the sample sender; no subscriptions file yet."""
    return Settings(
        base_url="https://news.example.org",
        secret_key=SECRET,
        previous_secret_keys=[OLD_SECRET],
        sender={"from": "OSCE News <news@example.org>"},
        subscriptions=tmp_path / "subscriptions.yaml",
    )


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A TestClient on the app with a pinned clock and one previous key."""
    app = create_app(settings, engine, clock=lambda: NOW)
    with TestClient(app, base_url="https://news.example.org") as client:
        yield client


@pytest.fixture
def broken_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine whose database cannot be opened (its directory is gone)."""
    missing = tmp_path / "missing"
    missing.mkdir()
    engine = create_store_engine(f"sqlite:///{missing / 'publisher.db'}")
    missing.rmdir()  # SQLite cannot create a file in a directory that is gone
    yield engine
    engine.dispose()
