"""The web app under load: concurrent feed readers polling with conditional GET.

    python benchmarks/load_feeds.py [--clients 50] [--seconds 20]

Collects the bundled sample into a temporary store, starts ``publisher serve`` on a
free loopback port, and runs ``--clients`` readers for ``--seconds``: each polls a
few feeds picked at random (locale × all / field / country × format), keeping each
ETag, so that after the first fetch the answers are 304s. The server's resident
memory is sampled every second. Prints a table, then one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
LOCALES = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]
FEEDS = [
    "all",
    "field/policing",
    "field/elections",
    "field/human-rights",
    "country/UZ",
    "country/RS",
    "country/UA",
]
FORMATS = ["atom", "rss", "json"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match[1]) / 1024 if match else float("nan")


def _prepare(directory: Path) -> dict[str, str]:
    (directory / "publisher.toml").write_text(
        f'database_url = "sqlite:///{directory / "publisher.db"}"\n'
        'secret_key = "load-test-key"\n'
        f'subscriptions = "{REPO / "subscriptions.yaml"}"\n'
        f'[[sources]]\nname = "newsroom"\nkind = "folder"\npath = "{REPO / "content"}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env["PUBLISHER_CONFIG"] = str(directory / "publisher.toml")
    subprocess.run(
        [sys.executable, "-m", "publisher", "collect"],
        cwd=directory,
        env=env,
        check=True,
        capture_output=True,
    )
    return env


async def _reader(
    client: httpx.AsyncClient, base: str, until: float, rng: random.Random, results: dict
) -> None:
    etags: dict[str, str] = {}
    # A reader follows a few feeds and polls them over and over.
    follows = [
        f"/feeds/{rng.choice(LOCALES)}/{rng.choice(FEEDS)}.{rng.choice(FORMATS)}" for _ in range(3)
    ]
    while time.monotonic() < until:
        path = rng.choice(follows)
        headers = {"Accept-Encoding": "gzip"}
        if path in etags:
            headers["If-None-Match"] = etags[path]
        began = time.perf_counter()
        try:
            response = await client.get(base + path, headers=headers)
        except httpx.HTTPError as exc:
            results["errors"].append(type(exc).__name__)
            continue
        results["latency"].append(time.perf_counter() - began)
        results["status"][response.status_code] = results["status"].get(response.status_code, 0) + 1
        if "etag" in response.headers:
            etags[path] = response.headers["etag"]


async def _load(base: str, clients: int, seconds: float, pid: int) -> dict:
    results: dict = {"latency": [], "status": {}, "errors": [], "rss": []}
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def sample() -> None:
            while time.monotonic() < until:
                results["rss"].append(_rss_mb(pid))
                await asyncio.sleep(1)

        readers = [_reader(client, base, until, random.Random(n), results) for n in range(clients)]
        await asyncio.gather(sample(), *readers)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        env = _prepare(directory)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "publisher", "serve", "--port", str(port)],
            cwd=directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("publisher serve did not start")
                time.sleep(0.2)
            results = asyncio.run(_load(base, args.clients, args.seconds, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
    latency = sorted(results["latency"])
    rss = results["rss"]
    warm = rss[len(rss) // 4 :] or rss  # after the first quarter: caches are full
    figures = {
        "clients": args.clients,
        "seconds": args.seconds,
        "requests": len(latency),
        "requests_per_s": round(len(latency) / args.seconds, 1),
        "status_200": results["status"].get(200, 0),
        "status_304": results["status"].get(304, 0),
        "other_status": sum(v for k, v in results["status"].items() if k not in (200, 304)),
        "errors": len(results["errors"]),
        "latency_p50_ms": round(statistics.median(latency) * 1000, 1) if latency else None,
        "latency_p99_ms": round(latency[int(len(latency) * 0.99) - 1] * 1000, 1)
        if latency
        else None,
        "server_rss_start_mb": round(rss[0], 1) if rss else None,
        "server_rss_end_mb": round(rss[-1], 1) if rss else None,
        "server_rss_growth_after_warmup_mb": round(max(warm) - min(warm), 1) if warm else None,
    }
    width = max(len(key) for key in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
