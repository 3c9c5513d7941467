"""WebSub publish pings: the form POST a hub receives, failures reported, and
`publisher feeds build` pinging once per feed file it wrote, with the hub in every feed."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner, Result
from lxml import etree

from publisher.cli import cli
from publisher.feeds import standard_specs
from publisher.feeds.websub import ping_hub
from publisher.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parents[2]
BASE = "https://news.example.org"
ATOM = "{http://www.w3.org/2005/Atom}"
USER_AGENT = "publisher-tests/1"
FEEDS = [f"{BASE}/feeds/en/all.atom", f"{BASE}/feeds/ru/field/policing.rss"]


@dataclass(frozen=True)
class Ping:
    path: str
    content_type: str
    user_agent: str
    form: dict[str, list[str]]


@dataclass
class Hub:
    """A WebSub hub on loopback that records each POST and answers ``status``."""

    url: str
    status: int = 202
    pings: list[Ping] = field(default_factory=list)


class _HubHandler(BaseHTTPRequestHandler):
    hub: Hub

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.hub.pings.append(
            Ping(
                self.path,
                self.headers.get("Content-Type", ""),
                self.headers.get("User-Agent", ""),
                parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True),
            )
        )
        self.send_response(self.hub.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _serve_hub() -> Iterator[Hub]:
    recorder = Hub(url="")
    handler = type("Handler", (_HubHandler,), {"hub": recorder})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/hub"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def hub() -> Iterator[Hub]:
    """A hub listening on 127.0.0.1, on a free port."""
    with _serve_hub() as recorder:
        yield recorder


def test_a_ping_is_a_form_post_per_feed(hub: Hub) -> None:
    """Each URL gets one POST of hub.mode=publish and hub.url, form-encoded, with our agent."""
    report = asyncio.run(ping_hub(hub.url, FEEDS, user_agent=USER_AGENT))
    assert (report.accepted, report.failed) == (2, [])
    assert sorted(ping.form["hub.url"][0] for ping in hub.pings) == sorted(FEEDS)
    for ping in hub.pings:
        assert ping.path == "/hub"
        assert ping.content_type == "application/x-www-form-urlencoded"
        assert ping.user_agent == USER_AGENT
        assert ping.form["hub.mode"] == ["publish"]
        assert set(ping.form) == {"hub.mode", "hub.url"}


def test_a_hub_error_is_reported_per_feed_not_raised(hub: Hub) -> None:
    """A hub answering 500 gives one `failed` entry per feed naming the status."""
    hub.status = 500
    report = asyncio.run(ping_hub(hub.url, FEEDS, user_agent=USER_AGENT))
    assert report.accepted == 0
    assert sorted(report.failed) == sorted(f"{url}: the hub answered 500" for url in FEEDS)
    assert len(hub.pings) == 2


def test_a_hub_that_refuses_connections_is_reported_not_raised() -> None:
    """A port bound but not listening refuses the connection: a `failed` entry per feed."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # held, never listening: connections are refused
        hub = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        report = asyncio.run(ping_hub(hub, FEEDS, user_agent=USER_AGENT))
    assert report.accepted == 0
    assert len(report.failed) == 2
    for url, failure in zip(sorted(FEEDS), sorted(report.failed), strict=True):
        assert failure.startswith(f"{url}: ConnectError: ")


def test_a_hub_url_httpx_cannot_parse_is_reported_not_raised() -> None:
    """A hub setting that passes validation but is no usable URL (a bad port) fails each ping."""
    report = asyncio.run(ping_hub("http://127.0.0.1:80a/", FEEDS, user_agent=USER_AGENT))
    assert report.accepted == 0
    assert [failure.split(": ")[1] for failure in report.failed] == ["InvalidURL", "InvalidURL"]


@dataclass(frozen=True)
class Built:
    """A deployment after `publisher collect` and a first `publisher feeds build`."""

    config: Path
    out: Path
    hub: Hub
    first: Result
    pings: tuple[Ping, ...]  # what the first build sent


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The sample content in a SQLite store, its feeds built once with a hub on loopback
    (shared by the tests below: a build of every feed takes seconds)."""
    root = tmp_path_factory.mktemp("deployment")
    shutil.copytree(REPO / "content", root / "content")
    with _serve_hub() as hub, pytest.MonkeyPatch.context() as environment:
        for variable in ("PUBLISHER_CONFIG", "PUBLISHER_DATABASE_URL", "PUBLISHER_SUBSCRIPTIONS"):
            environment.delenv(variable, raising=False)
        config = root / "publisher.toml"
        config.write_text(
            f'base_url = "{BASE}"\n'
            f'database_url = "sqlite:///{root / "publisher.db"}"\n'
            'locales = ["en"]\n'
            "[feeds]\n"
            f'websub_hub = "{hub.url}"\n'
            f'out_dir = "{root / "feeds"}"\n'
            "[[sources]]\n"
            'name = "newsroom"\n'
            'kind = "folder"\n'
            f'path = "{root / "content"}"\n',
            encoding="utf-8",
        )
        collected = CliRunner().invoke(cli, ["--config", str(config), "collect"])
        assert collected.exit_code == 0, collected.output
        first = CliRunner().invoke(cli, ["--config", str(config), "feeds", "build"])
        yield Built(config, root / "feeds", hub, first, tuple(hub.pings))


def _feed_files(out: Path) -> list[str]:
    return sorted(
        path.relative_to(out).as_posix()
        for path in out.rglob("*")
        if path.is_file()
        and path.suffix in {".atom", ".rss", ".json"}
        and not path.name.startswith(".")
    )


def test_the_first_build_pings_each_written_feed_once(built: Built) -> None:
    """The first `publisher feeds build` pings every feed file it wrote, once, and no OPML."""
    assert built.first.exit_code == 0, built.first.output
    files = _feed_files(built.out)
    # all, each field of work, each country; Atom, RSS and JSON Feed; in English
    assert len(files) == 3 * len(list(standard_specs(load_taxonomy())))
    assert (built.out / "en" / "feeds.opml").is_file()
    pinged = [ping.form["hub.url"][0] for ping in built.pings]
    assert sorted(pinged) == [f"{BASE}/feeds/{path}" for path in files]
    assert not any(url.endswith(".opml") for url in pinged)
    assert f"{len(files)} written" in built.first.output
    assert f"{len(files)} accepted, 0 failed" in built.first.output


def test_a_build_with_nothing_changed_pings_nothing(built: Built) -> None:
    """A second build over the same store writes no feed and sends the hub nothing."""
    before = len(built.hub.pings)
    again = CliRunner().invoke(cli, ["--config", str(built.config), "feeds", "build"])
    assert again.exit_code == 0, again.output
    assert "0 written" in again.output
    assert "WebSub" not in again.output
    assert len(built.hub.pings) == before


def test_every_feed_names_the_hub(built: Built) -> None:
    """Atom has <link rel="hub">, RSS an atom:link rel="hub", JSON Feed a WebSub `hubs` entry."""
    hub, out = built.hub.url, built.out / "en"
    for path in ("all.atom", "field/policing.atom", "country/UZ.atom"):
        atom = etree.parse(out / path).getroot()
        assert [link.get("href") for link in atom.findall(f"{ATOM}link[@rel='hub']")] == [hub]
    for path in ("all.rss", "field/policing.rss", "country/UZ.rss"):
        rss = etree.parse(out / path).getroot()
        links = rss.findall(f"channel/{ATOM}link[@rel='hub']")
        assert [link.get("href") for link in links] == [hub], path
    for path in ("all.json", "field/policing.json", "country/UZ.json"):
        document = json.loads((out / path).read_text(encoding="utf-8"))
        assert document["hubs"] == [{"type": "WebSub", "url": hub}], path
