"""GET /u/{token} asks, POST /u/{token} unsubscribes (RFC 8058 one-click)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from publisher.errors import SettingsError
from publisher.resources import bundled
from publisher.settings import Settings
from publisher.store.suppressions import Reason, is_suppressed, list_suppressions
from publisher.unsubscribe import make_token
from publisher.web import create_app
from tests.web.conftest import NOW, OLD_SECRET, SECRET

ADDRESS = "analyst@example.org"


def _suppressed(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {s.email for s in list_suppressions(conn)}


@pytest.fixture
def token() -> str:
    """A valid token for ADDRESS."""
    return make_token(ADDRESS, secret_key=SECRET)


def test_get_shows_a_confirmation_form_and_never_unsubscribes(
    client: TestClient, engine: Engine, token: str
) -> None:
    """A GET (what link scanners do) answers a form posting to the same URL, and changes nothing."""
    for _ in range(3):
        response = client.get(f"/u/{token}")
        assert response.status_code == 200
    assert client.head(f"/u/{token}").status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert f'<form method="post" action="/u/{token}">' in html
    assert '<button type="submit">Unsubscribe</button>' in html
    assert ADDRESS in html
    assert '<html lang="en" dir="ltr">' in html
    assert _suppressed(engine) == set()


def test_the_form_post_unsubscribes_at_once(client: TestClient, engine: Engine, token: str) -> None:
    """The page's button (an empty form POST) suppresses the address and says so."""
    response = client.post(f"/u/{token}")
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    with engine.connect() as conn:
        [entry] = list_suppressions(conn)
    assert (entry.email, entry.reason, entry.source, entry.created_at) == (
        ADDRESS,
        Reason.UNSUBSCRIBED,
        "web",
        NOW,
    )


@pytest.mark.parametrize("multipart", [False, True], ids=["urlencoded", "multipart"])
def test_the_one_click_post_of_a_mail_client_unsubscribes(
    client: TestClient, engine: Engine, token: str, multipart: bool
) -> None:
    """RFC 8058: a POST with List-Unsubscribe=One-Click, form-encoded or multipart, acts."""
    if multipart:
        response = client.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    else:
        response = client.post(
            f"/u/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    with engine.connect() as conn:
        [entry] = list_suppressions(conn)
    assert (entry.email, entry.source) == (ADDRESS, "one-click")


def test_a_second_post_is_harmless(client: TestClient, engine: Engine, token: str) -> None:
    """Unsubscribing twice answers 200 both times and keeps one entry, the first."""
    first = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    second = client.post(f"/u/{token}")
    assert (first.status_code, second.status_code) == (200, 200)
    with engine.connect() as conn:
        [entry] = list_suppressions(conn)
    assert entry.source == "one-click"


def test_a_token_signed_with_the_previous_key_still_works(
    client: TestClient, engine: Engine
) -> None:
    """After a key rotation, links in old emails keep working."""
    old = make_token(ADDRESS, secret_key=OLD_SECRET)
    assert client.post(f"/u/{old}").status_code == 200
    with engine.connect() as conn:
        assert is_suppressed(conn, ADDRESS)


def test_a_forged_token_gets_400_and_suppresses_nothing(
    client: TestClient, engine: Engine, token: str
) -> None:
    """Another key, a swapped signature or an edited payload: 400, one same page, no change."""
    other = make_token("victim@example.org", secret_key=SECRET)
    forged = [
        make_token("victim@example.org", secret_key="guessed-key"),
        token.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1],
        token[:-1] + ("A" if token[-1] != "A" else "B"),
    ]
    pages = set()
    for bad in forged:
        for method in ("GET", "POST"):
            response = client.request(method, f"/u/{bad}")
            assert response.status_code == 400, (method, bad)
            assert "This unsubscribe link is not valid" in response.text
            pages.add(response.text)
    assert len(pages) == 1  # no hint which part was wrong
    assert _suppressed(engine) == set()


@pytest.mark.parametrize(
    "path",
    [
        "/u/" + "A" * 60_000,  # the test client refuses URLs over 64 KiB
        "/u/%C3%A9t%C3%A9.sign%C3%A9",
        "/u/%00%FF%FE",
        "/u/%ED%A0%80",  # a lone surrogate, percent-encoded
        "/u/..%2F..%2Fetc",
        "/u/<script>alert(1)</script>",
        "/u/a.b.c.d",
        "/u/.",
    ],
)
def test_malformed_tokens_get_400_never_500(client: TestClient, engine: Engine, path: str) -> None:
    """Very long, non-ASCII, binary and hostile tokens are answered 400 (or 404), never 500."""
    for method in ("GET", "POST"):
        response = client.request(method, path)
        assert response.status_code in {400, 404}, (method, path, response.status_code)
        assert "<script>" not in response.text
    assert _suppressed(engine) == set()


def test_unknown_paths_and_wrong_methods(client: TestClient, token: str) -> None:
    """Unknown paths are 404 pages, an empty token too; PUT/DELETE are 405 with Allow."""
    assert client.get("/nope").status_code == 404
    assert client.get("/u/").status_code == 404
    assert client.post("/u").status_code == 404
    for method in ("PUT", "DELETE", "PATCH"):
        response = client.request(method, f"/u/{token}")
        assert response.status_code == 405
        assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert client.post("/healthz").status_code == 405


def test_security_headers_on_every_response(client: TestClient, token: str) -> None:
    """CSP, nosniff and no-referrer are on pages, errors and JSON alike."""
    responses = [
        client.get(f"/u/{token}"),
        client.get("/u/forged"),
        client.get("/nope"),
        client.put(f"/u/{token}"),
        client.get("/healthz"),
        client.post(f"/u/{token}"),
    ]
    for response in responses:
        headers = response.headers
        assert headers["content-security-policy"] == (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'"
        ), response.request.url
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_pages_follow_accept_language_among_available_catalogs(
    client: TestClient, token: str
) -> None:
    """A language with a catalog is chosen; one without, or junk, gives the default, English."""
    expected = {
        "ru;q=0.9, en;q=0.1": "ru",
        "de-AT, fr;q=0.5": "de",
        "ar": "ar",
        "pt-BR, pt;q=0.8": "en",  # no Portuguese catalog: English
        "*": "en",
        ";;;q=x,,": "en",
        "é" * 3000: "en",
    }
    for header, lang in expected.items():
        response = client.get(f"/u/{token}", headers={"Accept-Language": header.encode()})
        assert response.status_code == 200
        direction = "rtl" if lang == "ar" else "ltr"
        assert f'<html lang="{lang}" dir="{direction}">' in response.text, header
    russian = client.get(f"/u/{token}", headers={"Accept-Language": "ru"})
    assert "Если вы этого не запрашивали" in russian.text


def test_a_post_while_the_database_is_down_says_try_again(
    settings: Settings, broken_engine: Engine, token: str
) -> None:
    """If the unsubscribe cannot be recorded the page says so with 503, never 'unsubscribed'."""
    with TestClient(create_app(settings, broken_engine)) as client:
        response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
        page = client.get(f"/u/{token}")
    assert response.status_code == 503
    assert "Please try again later" in response.text
    assert "unsubscribed" not in response.text.lower()
    assert page.status_code == 200


def test_templates_dir_replaces_the_bundled_pages(
    settings: Settings, engine: Engine, token: str, tmp_path: Path
) -> None:
    """An own templates folder is used; one that lacks a page is refused at start."""
    own = tmp_path / "templates"
    shutil.copytree(bundled("templates") / "web", own / "web")
    confirm = own / "web" / "confirm.html"
    confirm.write_text(confirm.read_text().replace("<h1>", "<h1>Own: "), encoding="utf-8")
    with TestClient(create_app(settings, engine, templates_dir=own)) as client:
        assert "<h1>Own: " in client.get(f"/u/{token}").text
    confirm.unlink()
    with pytest.raises(SettingsError, match=r"web/confirm\.html not found"):
        create_app(settings, engine, templates_dir=own)


def test_pages_speak_the_subscriber_s_language_and_follow_edits(
    settings: Settings, engine: Engine
) -> None:
    """A subscribed address gets its rule's language, whatever Accept-Language says; an
    edit of subscriptions.yaml is followed, a broken edit keeps the last good answer, and
    an address nobody subscribes gets Accept-Language's choice."""
    path = settings.subscriptions
    path.write_text(f"subscribers:\n  - email: {ADDRESS}\n    locale: ru\n", encoding="utf-8")
    french = {"Accept-Language": "fr"}
    with TestClient(create_app(settings, engine, clock=lambda: NOW)) as client:
        token = make_token(ADDRESS, secret_key=SECRET)
        assert '<html lang="ru" dir="ltr">' in client.get(f"/u/{token}", headers=french).text
        path.write_text(
            f"subscribers:\n  - email: {ADDRESS.upper()}\n    locale: ar\n", encoding="utf-8"
        )
        assert '<html lang="ar" dir="rtl">' in client.get(f"/u/{token}", headers=french).text
        path.write_text("subscribers: [oops\n", encoding="utf-8")
        assert '<html lang="ar" dir="rtl">' in client.get(f"/u/{token}", headers=french).text
        other = make_token("someone.else@example.org", secret_key=SECRET)
        assert '<html lang="fr" dir="ltr">' in client.get(f"/u/{other}", headers=french).text
        done = client.post(f"/u/{token}", headers=french)
        assert '<html lang="ar" dir="rtl">' in done.text
