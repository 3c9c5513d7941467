"""GET /feeds/<locale>/<feed> over the collected sample content: types, validators, 304s,
the gzip variant, HEAD, query combinations, 404s and the per-revision cache."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine
from starlette.testclient import TestClient

from publisher.collect import collect
from publisher.feeds import FeedBuilder
from publisher.settings import Settings
from publisher.taxonomy import Taxonomy, load_taxonomy
from publisher.web import create_app
from tests.web.conftest import SECRET

REPO = Path(__file__).resolve().parents[2]
BASE = "https://news.example.org"
ATOM = "{http://www.w3.org/2005/Atom}"
TASHKENT = "2024-12-06-tashkent-workshop"  # policing; KZ, KG, TJ, TM, UZ
COLLECTED = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
EDITED = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}
STRONG_ETAG = re.compile(r'^"[0-9a-f]{32}"$')
NEW_ITEM = """\
---
title: "Election observers meet in Vienna"
published: 2025-02-28T10:00:00+01:00
fields_of_work: [elections]
countries: [AT]
---

Observers from the participating States met in Vienna.
"""


@dataclass
class Newsroom:
    """The sample content in a folder of its own, collected into the store."""

    settings: Settings
    taxonomy: Taxonomy
    engine: Engine
    content: Path

    def collect(self, at: datetime) -> None:
        [report] = asyncio.run(
            collect(self.settings, self.engine, taxonomy=self.taxonomy, clock=lambda: at)
        )
        assert report.ok, report


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    """The bundled taxonomy, read once."""
    return load_taxonomy()


@pytest.fixture
def newsroom(tmp_path: Path, engine: Engine, taxonomy: Taxonomy) -> Newsroom:
    """A store holding the sample content, collected at COLLECTED."""
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    settings = Settings(
        base_url=BASE,
        secret_key=SECRET,
        sender={"from": "OSCE News <news@example.org>"},
        sources=[{"name": "newsroom", "kind": "folder", "path": str(content)}],
        feeds={"revision_ttl_ms": 0},  # each request sees the store as it is
    )
    newsroom = Newsroom(settings, taxonomy, engine, content)
    newsroom.collect(COLLECTED)
    return newsroom


@pytest.fixture
def feeds(newsroom: Newsroom) -> Iterator[TestClient]:
    """A TestClient on the web app over the newsroom's store."""
    app = create_app(newsroom.settings, newsroom.engine, taxonomy=newsroom.taxonomy)
    with TestClient(app, base_url=BASE) as client:
        yield client


def _raw(
    client: TestClient, url: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the body as sent (not decoded by the client)."""
    with client.stream("GET", url, headers=headers) as response:
        return response.status_code, dict(response.headers), b"".join(response.iter_raw())


def _self_link(atom: bytes) -> str:
    root = etree.fromstring(atom)
    [link] = root.findall(f"{ATOM}link[@rel='self']")
    return str(link.get("href"))


def test_each_format_comes_with_its_type_and_cache_validators(feeds: TestClient) -> None:
    """Atom, RSS, JSON Feed and OPML: 200, their type, public caching, a strong ETag and the
    store's last change as Last-Modified."""
    expected = {
        "/feeds/en/all.atom": "application/atom+xml; charset=utf-8",
        "/feeds/ru/field/policing.rss": "application/rss+xml; charset=utf-8",
        "/feeds/de/country/UZ.json": "application/feed+json; charset=utf-8",
        "/feeds/fr/feeds.opml": "text/x-opml; charset=utf-8",
    }
    for url, media_type in expected.items():
        response = feeds.get(url, headers=IDENTITY)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == media_type, url
        assert response.headers["cache-control"] == "public, max-age=300"
        assert response.headers["vary"] == "Accept-Encoding"
        assert STRONG_ETAG.match(response.headers["etag"]), (url, response.headers["etag"])
        assert parsedate_to_datetime(response.headers["last-modified"]) == COLLECTED
        assert "content-encoding" not in response.headers
        if url.endswith(".json"):
            assert json.loads(response.content)["version"] == "https://jsonfeed.org/version/1.1"
        else:
            root = etree.fromstring(response.content)
            assert root.tag in {f"{ATOM}feed", "rss", "opml"}, url


def test_if_none_match_with_the_etag_gives_an_empty_304(feeds: TestClient) -> None:
    """The ETag sent back (alone, in a list, weak-prefixed, or `*`) gives 304, no body, same
    validators; another tag gives the feed."""
    url = "/feeds/en/field/policing.atom"
    first = feeds.get(url, headers=IDENTITY)
    etag = first.headers["etag"]
    for condition in (etag, f'"0000", {etag}', f"W/{etag}", "*"):
        again = feeds.get(url, headers={**IDENTITY, "If-None-Match": condition})
        assert again.status_code == 304, condition
        assert again.content == b""
        assert "content-length" not in again.headers
        assert again.headers["etag"] == etag
        assert again.headers["last-modified"] == first.headers["last-modified"]
        assert again.headers["cache-control"] == "public, max-age=300"
        assert again.headers["vary"] == "Accept-Encoding"
    stale = feeds.get(url, headers={**IDENTITY, "If-None-Match": '"0000"'})
    assert stale.status_code == 200
    assert stale.content == first.content


def test_if_modified_since_gives_304_unless_the_feed_changed_after_it(feeds: TestClient) -> None:
    """If-Modified-Since at or after Last-Modified gives 304; before it, or unreadable, 200."""
    url = "/feeds/en/country/KZ.rss"
    last_modified = feeds.get(url, headers=IDENTITY).headers["last-modified"]
    earlier = format_datetime(COLLECTED - timedelta(seconds=1), usegmt=True)
    later = format_datetime(COLLECTED + timedelta(days=1), usegmt=True)
    expected = {
        last_modified: 304,
        later: 304,
        earlier: 200,
        "yesterday": 200,
        "Sat, 01 Mar 2025 08:00:00": 200,  # no zone: not an HTTP date
        "": 200,
    }
    for since, status in expected.items():
        response = feeds.get(url, headers={**IDENTITY, "If-Modified-Since": since})
        assert response.status_code == status, since
        assert (response.content == b"") == (status == 304)


def test_if_none_match_wins_over_if_modified_since(feeds: TestClient) -> None:
    """RFC 9110 §13.2.2: with both, only If-None-Match counts: a stale tag and a fresh date give
    200, a fresh tag and an old date give 304."""
    url = "/feeds/en/all.json"
    first = feeds.get(url, headers=IDENTITY)
    fresh_date = first.headers["last-modified"]
    old_date = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    stale = feeds.get(
        url, headers={**IDENTITY, "If-None-Match": '"0000"', "If-Modified-Since": fresh_date}
    )
    assert stale.status_code == 200
    assert stale.content == first.content
    fresh = feeds.get(
        url,
        headers={**IDENTITY, "If-None-Match": first.headers["etag"], "If-Modified-Since": old_date},
    )
    assert fresh.status_code == 304


def test_an_edit_changes_the_feeds_showing_the_item_and_no_other(
    feeds: TestClient, newsroom: Newsroom
) -> None:
    """After an item's text is edited, its feeds get a new ETag and a later Last-Modified and
    answer the old ETag with 200; a feed without the item still answers 304."""
    showing = ["/feeds/en/all.atom", "/feeds/en/field/policing.rss", "/feeds/en/country/UZ.json"]
    other = "/feeds/en/country/RS.atom"  # Serbia: its own item and those naming no country
    before = {url: feeds.get(url, headers=IDENTITY) for url in [*showing, other]}
    for url in showing:
        assert TASHKENT in before[url].text and "Toshkent" not in before[url].text
    assert TASHKENT not in before[other].text
    assert "2025-02-25-mediation-and-dialogue-facilitation-course" in before[other].text

    english = newsroom.content / f"{TASHKENT}.en.md"
    english.write_text(
        english.read_text(encoding="utf-8").replace("Tashkent", "Toshkent"), encoding="utf-8"
    )
    newsroom.collect(EDITED)

    for url in showing:
        old = before[url].headers
        after = feeds.get(url, headers={**IDENTITY, "If-None-Match": old["etag"]})
        assert after.status_code == 200, url
        assert "Toshkent" in after.text
        assert STRONG_ETAG.match(after.headers["etag"])
        assert after.headers["etag"] != old["etag"]
        assert parsedate_to_datetime(after.headers["last-modified"]) == EDITED
        assert parsedate_to_datetime(old["last-modified"]) == COLLECTED
    unchanged = feeds.get(
        other, headers={**IDENTITY, "If-None-Match": before[other].headers["etag"]}
    )
    assert unchanged.status_code == 304
    assert unchanged.headers["etag"] == before[other].headers["etag"]


def test_the_gzip_variant_has_its_own_strong_etag_and_the_same_content(feeds: TestClient) -> None:
    """With Accept-Encoding: gzip a large feed comes compressed, under a strong ETag of its
    own, the same bytes every time, and decompresses to the identity body; each ETag gives
    a 304 for its own variant."""
    url = "/feeds/en/all.atom"
    status, identity_headers, identity = _raw(feeds, url, IDENTITY)
    assert status == 200 and "content-encoding" not in identity_headers
    status, headers, compressed = _raw(feeds, url, GZIP)
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert int(headers["content-length"]) == len(compressed) < len(identity)
    etag = headers["etag"]
    assert etag == identity_headers["etag"][:-1] + '-gzip"'
    assert not etag.startswith("W/")
    assert gzip.decompress(compressed) == identity
    assert _raw(feeds, url, GZIP)[2] == compressed

    # RFC 9110 §13.1.2: a 304 only for the ETag of the representation that would be sent.
    for accept, own, other in (
        (GZIP, etag, identity_headers["etag"]),
        (IDENTITY, identity_headers["etag"], etag),
    ):
        again = feeds.get(url, headers={**accept, "If-None-Match": own})
        assert again.status_code == 304, accept
        assert again.headers["etag"] == own
        assert feeds.get(url, headers={**accept, "If-None-Match": other}).status_code == 200
    refused = _raw(feeds, url, {"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused[1] and refused[2] == identity


def test_a_small_feed_is_sent_as_is_even_to_gzip_clients(feeds: TestClient) -> None:
    """A feed under 1 KiB (a field of work with no items) is not compressed and keeps the
    identity ETag."""
    url = "/feeds/en/field/arms-control.json"
    _, identity_headers, identity = _raw(feeds, url, IDENTITY)
    status, headers, body = _raw(feeds, url, GZIP)
    assert status == 200 and len(identity) < 1024
    assert "content-encoding" not in headers
    assert headers["etag"] == identity_headers["etag"]
    assert body == identity


def test_head_gives_the_get_headers_and_no_body(feeds: TestClient) -> None:
    """HEAD answers what GET would, Content-Length included, without the body."""
    url = "/feeds/ru/all.rss"
    for accept in (IDENTITY, GZIP):
        status, get_headers, body = _raw(feeds, url, accept)
        with feeds.stream("HEAD", url, headers=accept) as head:
            head_body = b"".join(head.iter_raw())
            assert head.status_code == status == 200
            assert dict(head.headers) == get_headers
        assert head_body == b""
        assert int(get_headers["content-length"]) == len(body) > 0


def test_a_combination_is_one_feed_under_its_canonical_url(feeds: TestClient) -> None:
    """Fields and countries in any order, repeated or in lower case give the same bytes, and
    the feed's self link is the canonical URL: field first, then countries sorted."""
    urls = [
        "/feeds/en/all.atom?field=policing&country=UZ&country=KZ",
        "/feeds/en/all.atom?country=KZ&field=policing&country=UZ",
        "/feeds/en/all.atom?country=UZ&country=KZ&field=policing&country=uz&utm_source=x",
    ]
    responses = [feeds.get(url, headers=IDENTITY) for url in urls]
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["etag"] for r in responses}) == 1
    body = responses[0].content
    assert _self_link(body) == f"{BASE}/feeds/en/all.atom?field=policing&country=KZ&country=UZ"
    root = etree.fromstring(body)
    ids = [e.findtext(f"{ATOM}id") for e in root.iter(f"{ATOM}entry")]
    # policing in KZ or UZ: Tashkent; the Serbian policing item names another country.
    assert ids == [f"tag:news.example.org,2026:item/{TASHKENT}/en"]


def test_a_region_stands_for_its_countries(feeds: TestClient) -> None:
    """?country=central-asia is the feed of the five Central Asian countries, byte for byte."""
    region = feeds.get("/feeds/en/all.rss?country=central-asia", headers=IDENTITY)
    codes = feeds.get(
        "/feeds/en/all.rss?country=TM&country=KG&country=UZ&country=TJ&country=KZ",
        headers=IDENTITY,
    )
    assert region.status_code == codes.status_code == 200
    assert region.content == codes.content
    assert TASHKENT in region.text
    assert "2024-11-28-astana-trafficking-hotline-training" in region.text
    assert "2025-02-20-serbia-community-policing-prevention" not in region.text


UNKNOWN = [
    "/feeds/xx/all.atom",
    "/feeds/EN/all.atom",
    "/feeds/%2e%2e/all.atom",
    "/feeds/en/field/arms.atom",
    "/feeds/en/all.atom?field=arms",
    "/feeds/en/country/ZZ.json",
    "/feeds/en/all.rss?country=atlantis",
    "/feeds/en/all.xml",
    "/feeds/en/all.ATOM",
    "/feeds/en/all",
    "/feeds/en/",
    "/feeds/en/field/policing.atom?country=UZ",
    "/feeds/en/country/UZ.rss?field=policing",
    "/feeds/en/field/.atom",
    "/feeds/en/country/.json",
    "/feeds/en/.atom",
    "/feeds/en/field.atom",
    "/feeds/en/all.atom/all.atom",
    "/feeds/en/field/policing/x.atom",
    "/feeds/en/%2e%2e/%2e%2e/etc/passwd",
    "/feeds/en/..%2f..%2f..%2fetc%2fpasswd",
    "/feeds/en/field/..%2f..%2fpublisher.toml.atom",
]
MALFORMED_QUERIES = [
    "%%%",
    "field",
    "field=&country=",
    "country=%ZZ",
    "&&==&",
    "field=%00",
    "country=%ff%fe",
    "field=policing;country=UZ",
    "field=" + "x" * 5000,
    "country[]=UZ&field[0]=policing",
]


def test_an_unknown_feed_is_a_short_plain_404(feeds: TestClient) -> None:
    """Unknown locale, field, country or format, misplaced parameters and odd paths give 404
    with a one-line text reason, not a 500 or a traceback."""
    for url in UNKNOWN:
        response = feeds.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "text/plain; charset=utf-8", url
        assert response.text.startswith("Not Found: "), url
        assert response.text.count("\n") == 1 and len(response.text) < 200, url
        assert "Traceback" not in response.text and "root:" not in response.text
    # A literal ../ is resolved by the client (as by any browser) to /etc/passwd: no route.
    response = feeds.get("/feeds/en/../../etc/passwd")
    assert response.status_code == 404
    assert "root:" not in response.text


def test_a_malformed_query_never_gives_500(feeds: TestClient) -> None:
    """Whatever the query string, the answer is the feed or a text 404, never a server error."""
    for query in MALFORMED_QUERIES:
        response = feeds.get(f"/feeds/en/all.atom?{query}")
        assert response.status_code in {200, 404}, query
        if response.status_code == 404:
            assert response.text.startswith("Not Found: "), query


def test_the_cache_builds_a_feed_once_per_store_revision(
    feeds: TestClient, newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls of an unchanged store (GET, gzip, HEAD, 304) build the feed once; a collection
    that adds an item makes the next GET build it again, with the item."""
    calls: list[str] = []
    build: Callable[..., object] = FeedBuilder.build

    def counting(self: FeedBuilder, conn: object, locale: str, *args: object) -> object:
        calls.append(locale)
        return build(self, conn, locale, *args)

    monkeypatch.setattr(FeedBuilder, "build", counting)
    url = "/feeds/en/field/elections.atom"
    first = feeds.get(url, headers=IDENTITY)
    feeds.get(url, headers=IDENTITY)
    feeds.get(url, headers=GZIP)
    feeds.head(url)
    not_modified = feeds.get(url, headers={**IDENTITY, "If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304
    assert feeds.get("/feeds/en/all.atom?field=elections", headers=IDENTITY).content == (
        first.content
    )
    assert calls == ["en"]
    feeds.get("/feeds/ru/field/elections.atom")
    assert calls == ["en", "ru"]

    (newsroom.content / "2025-02-28-vienna-observers.en.md").write_text(NEW_ITEM, encoding="utf-8")
    newsroom.collect(EDITED)
    after = feeds.get(url, headers={**IDENTITY, "If-None-Match": first.headers["etag"]})
    assert after.status_code == 200
    assert "Election observers meet in Vienna" in after.text
    assert calls == ["en", "ru", "en"]
    feeds.get(url, headers=IDENTITY)
    assert calls == ["en", "ru", "en"]


def test_an_edit_stamped_earlier_than_the_newest_change_still_reaches_the_feed(
    feeds: TestClient, newsroom: Newsroom
) -> None:
    """Sources collect side by side and stamp items with their own start: an edit
    committed after a newer change, with an older stamp, is not hidden by the cache."""
    url = "/feeds/en/all.atom"
    (newsroom.content / "2025-02-28-vienna-observers.en.md").write_text(NEW_ITEM, encoding="utf-8")
    newsroom.collect(EDITED)  # the newest change in the store
    assert "Election observers meet in Vienna" in feeds.get(url, headers=IDENTITY).text
    path = newsroom.content / f"{TASHKENT}.en.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("Tashkent", "Toshkent"), encoding="utf-8"
    )
    newsroom.collect(EDITED - timedelta(hours=1))  # committed later, stamped earlier
    assert "Toshkent" in feeds.get(url, headers=IDENTITY).text


def test_polls_within_the_revision_ttl_read_the_store_once(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With feeds.revision_ttl_ms, repeated polls are answered from memory: the store's
    revision is read once, not once per request."""
    import publisher.web.feeds as served

    reads: list[object] = []
    real = served.store_revision

    def counting(conn: object) -> object:
        reads.append(conn)
        return real(conn)  # type: ignore[arg-type]

    monkeypatch.setattr(served, "store_revision", counting)
    settings = newsroom.settings.model_copy(
        update={"feeds": newsroom.settings.feeds.model_copy(update={"revision_ttl_ms": 60_000})}
    )
    app = create_app(settings, newsroom.engine, taxonomy=newsroom.taxonomy)
    with TestClient(app, base_url=BASE) as client:
        first = client.get("/feeds/en/all.atom", headers=IDENTITY)
        for _ in range(10):
            again = client.get(
                "/feeds/en/all.atom", headers={**IDENTITY, "If-None-Match": first.headers["etag"]}
            )
            assert again.status_code == 304
    assert len(reads) == 1
