"""The whole daily send as an operator runs it: ``publisher send`` for every address.

A store whose addresses (``--subscribers``, all on daily digests as in the fan-out step)
were registered three days ago and whose day of items (``--items``) came yesterday;
then ``python -m publisher --config … send`` in a process of its own, into an
``smtp-sink``: it loads ``subscriptions.yaml``, plans every digest (rendering in worker
processes) and sends them all. Its wall time, and the memory of the whole process tree
sampled every 0.2 s: the sum of its processes' proportional set sizes (PSS: pages
shared between the parent and its forked workers counted once) and, for comparison,
of their resident sizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import synthetic
from fanout import DAILY
from harness import Context, Figures
from sending import INSTALL, program, smtp_sink

from publisher.delivery.planning import register_subscribers
from publisher.store.database import open_store
from publisher.store.items import assign_entry_ids, save_items
from publisher.subscriptions import load_subscriptions


def measure_send(context: Context) -> Figures:
    """Seconds and peak memory of one ``publisher send`` over every address."""
    sink_program = program("smtp-sink")
    if sink_program is None:
        context.note(f"smtp-sink not found: the whole-send step is skipped. Install: {INSTALL}")
        return {}
    directory = context.directory / "send"
    directory.mkdir()
    path = synthetic.write_subscriptions(directory, context.subscribers, mix=DAILY)
    subscriptions = load_subscriptions(path, taxonomy=context.taxonomy, locales=synthetic.LOCALES)
    database_url = f"sqlite:///{directory / 'publisher.db'}"
    settings = context.settings(database_url=database_url)
    engine = open_store(database_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        register_subscribers(conn, subscriptions, now=now - timedelta(days=3))
        fetched = synthetic.items(
            subscriptions.taxonomy,
            per_day=context.items_per_day,
            days=1,
            end=now - timedelta(days=1),
        )
        save_items(conn, "synthetic", fetched, now=now - timedelta(days=1))
        assign_entry_ids(conn, settings.entry_id_prefix)
    engine.dispose()
    del subscriptions

    with smtp_sink(sink_program) as sink:
        config = directory / "publisher.toml"
        locales = ", ".join(f'"{locale}"' for locale in synthetic.LOCALES)
        config.write_text(
            f'database_url = "{database_url}"\n'
            f'subscriptions = "{path}"\n'
            f"locales = [{locales}]\n"
            'secret_key = "benchmark-secret-key-benchmark-secret-key"\n'
            'base_url = "https://news.example.org"\n'
            '[sender]\nfrom = "OSCE News <news@example.org>"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\n'
            f"connections = {context.smtp_connections[0]}\n",
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
        command = [sys.executable, "-m", "publisher", "--config", str(config), "send"]
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        peaks = _Peaks(process.pid)
        output, _ = process.communicate(timeout=3600)
        seconds = time.perf_counter() - started
        peaks.stop()
    if process.returncode != 0:
        raise RuntimeError(f"publisher send exited {process.returncode}:\n{output.decode()}")
    return {
        "send_subscribers": context.subscribers,
        "send_messages": sink.received,
        "send_s": round(seconds, 1),
        "send_msgs_per_s": round(sink.received / seconds),
        "send_peak_pss_mb": round(peaks.pss_kib / 1024, 1),
        "send_peak_rss_sum_mb": round(peaks.rss_kib / 1024, 1),
    }


class _Peaks:
    """The largest memory of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pss_kib = self.rss_kib = 0
        self._pid = pid
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(self._interval):
            pss = rss = 0
            for pid in _tree(self._pid):
                values = _rollup(pid)
                pss += values.get("Pss", 0)
                rss += values.get("Rss", 0)
            self.pss_kib = max(self.pss_kib, pss)
            self.rss_kib = max(self.rss_kib, rss)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _rollup(pid: int) -> dict[str, int]:
    """Pss and Rss in KiB from /proc/PID/smaps_rollup (empty when it has gone)."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        if name in ("Pss", "Rss"):
            values[name] = int(rest.split()[0])
    return values
