"""What every measurement shares: the Context, timing, memory and profiling helpers.

A measurement is a function ``measure(context) -> Figures``; ``run.py`` lists them in
MEASUREMENTS. Measurements that need the same data (the fan-out's store, the
personalized messages) leave it on the Context for the ones after them.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import synthetic  # beside this file: on sys.path when run as a script

from publisher.settings import Settings
from publisher.taxonomy import Taxonomy

Figures = dict[str, float | int]

# Settings of the synthetic deployment: the defaults (nine locales, 50 entries a feed,
# four SMTP connections) and what a real one must set.
SETTINGS: dict[str, Any] = {
    "base_url": "https://news.example.org",
    "secret_key": "benchmark-secret-key-benchmark-secret-key",
    "sender": {"from": "OSCE News <news@example.org>", "reply_to": "info@example.org"},
    "feeds": {"tag_authority": "news.example.org"},
}


@dataclass
class Context:
    """What the measurements share: the sizes asked for and the generated files."""

    subscribers: int
    repeat: int
    directory: Path
    taxonomy: Taxonomy
    fanout_subscribers: int = 10_000
    items_per_day: int = 40
    naive_sample: int = 2_000
    smtp_messages: int = 5_000
    smtp_connections: tuple[int, ...] = (4, 8)
    feed_days: int = 60
    history_days: int = 365  # days of items and records before the history step's pass
    history_subscribers: int = 2_000
    plan_processes: int | None = None  # None: planning's default (one per CPU)
    workers_database_url: str | None = None  # PostgreSQL the workers step may empty
    profile: Path | None = None  # write a cProfile of each timed step here
    files: dict[str, Path] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)  # data handed between steps
    notes: list[str] = field(default_factory=list)  # printed under the table

    def subscriptions_file(self) -> Path:
        """The synthetic ``subscriptions.yaml``, generated on first use."""
        if "subscriptions" not in self.files:
            self.files["subscriptions"] = synthetic.write_subscriptions(
                self.directory, self.subscribers
            )
        return self.files["subscriptions"]

    def settings(self, **overrides: Any) -> Settings:
        """The deployment's settings, with ``overrides`` (top-level keys) on top."""
        return Settings.model_validate({**SETTINGS, **overrides})

    def note(self, text: str) -> None:
        self.notes.append(text)


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The shortest of ``repeat`` wall-clock times of ``run()``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass
class Timer:
    seconds: float = 0.0


@contextmanager
def timed(context: Context, name: str) -> Iterator[Timer]:
    """Wall-clock time of the block; with ``--profile DIR``, also its cProfile.

    The profile sees this thread only (``asyncio.to_thread`` work is not in it), and it
    slows the block down: figures of a profiled run are not the benchmark's figures.
    """
    timer = Timer()
    profiler = cProfile.Profile() if context.profile is not None else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    try:
        yield timer
    finally:
        if profiler is not None:
            profiler.disable()
        timer.seconds = time.perf_counter() - start
        if profiler is not None and context.profile is not None:
            _dump(profiler, context.profile, name)


def _dump(profiler: cProfile.Profile, directory: Path, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(directory / f"{name}.prof"))
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(30)
        (directory / f"{name}.{order}.txt").write_text(out.getvalue(), encoding="utf-8")
    print(f"profile of {name}: {directory / name}.*", file=sys.stderr)


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    return _status_kib("VmRSS") / 1024


# The process's peak before each reset by peak_rss(): resetting VmHWM resets ru_maxrss
# too (both are the kernel's one high-water mark), so the run's peak is the largest of
# these and the peak since the last reset.
_EARLIER_PEAKS_MB: list[float] = []


def run_peak_rss_mb() -> float:
    """The largest resident memory of this process since it started, in MB."""
    return max([*_EARLIER_PEAKS_MB, _status_kib("VmHWM") / 1024])


@contextmanager
def peak_rss(into: dict[str, float]) -> Iterator[None]:
    """The process's peak resident memory during the block (``into["peak_mb"]``).

    Linux resets the peak (VmHWM) when "5" is written to /proc/self/clear_refs; where it
    cannot be, ``into`` gets no peak.
    """
    into["before_mb"] = rss_mb()
    peak_so_far = _status_kib("VmHWM") / 1024
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        yield
        return
    _EARLIER_PEAKS_MB.append(peak_so_far)
    yield
    into["peak_mb"] = _status_kib("VmHWM") / 1024


def _status_kib(key: str) -> int:
    status = Path("/proc/self/status").read_text(encoding="ascii")
    match = re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) if match else 0
