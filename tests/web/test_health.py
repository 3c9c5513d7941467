"""GET /healthz: 200 while the database answers, 503 when it does not."""

from __future__ import annotations

from sqlalchemy import Engine
from starlette.testclient import TestClient

from publisher.settings import Settings
from publisher.web import create_app


def test_healthz_is_ok_when_the_database_answers(client: TestClient) -> None:
    """A reachable store gives 200 {"status": "ok"}, not cached."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_healthz_is_503_when_the_database_does_not_answer(
    settings: Settings, broken_engine: Engine
) -> None:
    """A store that cannot be opened gives 503 {"status": "unavailable"}, not 500."""
    with TestClient(create_app(settings, broken_engine)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert response.headers["x-content-type-options"] == "nosniff"
