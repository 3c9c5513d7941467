"""The performance harness: generate synthetic data, measure, report.

    python benchmarks/run.py [--subscribers N] [--repeat R]

Prints a table for people, then one JSON object on the last line for machines. Each
measurement is a function in MEASUREMENTS that takes the Context and returns its
figures; add one there to measure something new (DESIGN.md lists those to come).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import synthetic  # beside this file: on sys.path when run as a script
import yaml

from publisher.subscriptions import load_subscriptions
from publisher.taxonomy import Taxonomy, load_taxonomy

Figures = dict[str, float | int]


@dataclass
class Context:
    """What the measurements share: the sizes asked for and the generated files."""

    subscribers: int
    repeat: int
    directory: Path
    taxonomy: Taxonomy
    files: dict[str, Path] = field(default_factory=dict)

    def subscriptions_file(self) -> Path:
        """The synthetic ``subscriptions.yaml``, generated on first use."""
        if "subscriptions" not in self.files:
            self.files["subscriptions"] = synthetic.write_subscriptions(
                self.directory, self.subscribers
            )
        return self.files["subscriptions"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """As the loader does while it holds the node tree (see publisher.subscriptions)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The shortest of ``repeat`` wall-clock times of ``run()``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_yaml_load(context: Context) -> Figures:
    """Read and validate subscriptions.yaml (parse, check every value, build rules)."""
    path = context.subscriptions_file()
    loaded = load_subscriptions(path, taxonomy=context.taxonomy, locales=synthetic.LOCALES)
    seconds = best_of(
        context.repeat,
        lambda: load_subscriptions(path, taxonomy=context.taxonomy, locales=synthetic.LOCALES),
    )
    return {
        "subscribers": len(loaded.subscribers),
        "distinct_rules": len(loaded.rules()),
        "yaml_file_mb": round(path.stat().st_size / 1e6, 1),
        "yaml_load_s": round(seconds, 3),
    }


def measure_yaml_floor(context: Context) -> Figures:
    """libyaml's events as Python objects and nothing else: what PyYAML costs at least.

    Composing the node tree costs about this much again; the loader's own checks are
    what ``yaml_load_s`` adds on top.
    """
    text = context.subscriptions_file().read_text(encoding="utf-8")
    counted: list[int] = []

    def parse() -> None:
        with gc_paused():
            counted.append(sum(1 for _ in yaml.parse(text, Loader=yaml.CSafeLoader)))

    seconds = best_of(context.repeat, parse)
    return {"yaml_events": counted[0], "yaml_parse_floor_s": round(seconds, 3)}


def measure_peak_rss(context: Context) -> Figures:
    """The largest resident memory of this process so far (run it last)."""
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_rss_mb": round(kilobytes / 1024, 1)}


MEASUREMENTS: list[Callable[[Context], Figures]] = [
    measure_yaml_load,
    measure_yaml_floor,
    measure_peak_rss,  # last: it sees the peak of all the others
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    figures: Figures = {}
    with tempfile.TemporaryDirectory(prefix="publisher-bench-") as directory:
        context = Context(args.subscribers, args.repeat, Path(directory), load_taxonomy())
        for measure in MEASUREMENTS:
            figures.update(measure(context))
    print(_table(figures))
    print(json.dumps(figures))
    return 0


def _table(figures: Figures) -> str:
    width = max(len(name) for name in figures)
    return "\n".join(f"{name:<{width}}  {value:>12}" for name, value in figures.items())


if __name__ == "__main__":
    sys.exit(main())
