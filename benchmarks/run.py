"""The performance harness: generate synthetic data, measure, report.

    python benchmarks/run.py [--subscribers N] [--fanout-subscribers N] [--items M]
                             [--repeat R] [--only yaml,fanout,...] [--profile DIR]

Prints a table for people, then one JSON object on the last line for machines. Each
measurement is a function in MEASUREMENTS that takes the Context and returns its
figures; add one there to measure something new. They live beside this file:
``fanout.py`` (plan + personalize, and the naive path), ``sending.py`` (our Worker
against Postfix's smtp-source into smtp-sink), ``workers.py`` (1, 2 and 3 ``publisher
worker`` processes on one PostgreSQL outbox), ``send_all.py`` (the whole ``publisher
send``, its time and the memory of its process tree), ``history.py`` (a pass over
a year of history, with the outbox's window and without), ``feed_build.py`` (static
feeds, full and incremental), ``harness.py`` (what they share), ``synthetic.py`` (the
data).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import synthetic  # beside this file: on sys.path when run as a script
import yaml
from fanout import measure_fanout, measure_naive
from feed_build import measure_feeds
from harness import Context, Figures, best_of, run_peak_rss_mb
from history import measure_history
from send_all import measure_send
from sending import measure_smtp
from workers import measure_workers

from publisher.subscriptions import load_subscriptions
from publisher.subscriptions._nodes import gc_paused  # as the loader pauses it
from publisher.taxonomy import load_taxonomy


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
    # The fan-out resets the kernel's high-water mark to measure its own peak.
    return {"peak_rss_mb": round(max(kilobytes / 1024, run_peak_rss_mb()), 1)}


MEASUREMENTS: dict[str, Callable[[Context], Figures]] = {
    "yaml": measure_yaml_load,
    "yaml_floor": measure_yaml_floor,
    "fanout": measure_fanout,
    "naive": measure_naive,  # after fanout: the same data
    "smtp": measure_smtp,  # after fanout: messages of its median size
    "workers": measure_workers,  # after fanout: 1, 2, 3 worker processes on PostgreSQL
    "feeds": measure_feeds,
    "send": measure_send,  # the whole `publisher send` over --subscribers addresses
    "history": measure_history,  # a pass over a year of history, with the window and without
    "peak_rss": measure_peak_rss,  # last: it sees the peak of all the others
}
NEEDS = {"naive": "fanout", "smtp": "fanout", "workers": "fanout"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscribers", type=int, default=100_000, help="addresses in subscriptions.yaml"
    )
    parser.add_argument(
        "--fanout-subscribers",
        type=int,
        default=10_000,
        help="addresses of the fan-out (its time grows with them: ~1 min for 10,000)",
    )
    parser.add_argument("--items", type=int, default=40, help="new items a day")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument(
        "--naive-sample", type=int, default=2_000, help="recipients the naive path is timed on"
    )
    parser.add_argument("--smtp-messages", type=int, default=5_000)
    parser.add_argument(
        "--smtp-connections", default="4,8", help="comma-separated SMTP connection counts"
    )
    parser.add_argument(
        "--feed-days", type=int, default=60, help="days of items in the feeds' store"
    )
    parser.add_argument(
        "--history-days", type=int, default=365, help="days of history the step's pass reads"
    )
    parser.add_argument(
        "--history-subscribers", type=int, default=2_000, help="addresses of the history step"
    )
    parser.add_argument(
        "--plan-processes",
        type=int,
        help="processes rendering the fan-out's bodies (default: planning's, one per CPU)",
    )
    parser.add_argument(
        "--workers-database-url",
        help="PostgreSQL the workers step may empty (default: $PUBLISHER_BENCH_DATABASE_URL)",
    )
    parser.add_argument(
        "--only",
        default=",".join(MEASUREMENTS),
        help=f"comma-separated measurements, of: {', '.join(MEASUREMENTS)}",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="write a cProfile of each timed step into DIR (slows those steps down)",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    for name in chosen:
        if name not in MEASUREMENTS:
            parser.error(f"--only: no measurement {name!r}; expected some of {list(MEASUREMENTS)}")
        if name in NEEDS and NEEDS[name] not in chosen:
            chosen.append(NEEDS[name])
    figures: Figures = {}
    with tempfile.TemporaryDirectory(prefix="publisher-bench-") as directory:
        context = Context(
            args.subscribers,
            args.repeat,
            Path(directory),
            load_taxonomy(),
            fanout_subscribers=args.fanout_subscribers,
            items_per_day=args.items,
            naive_sample=args.naive_sample,
            smtp_messages=args.smtp_messages,
            smtp_connections=tuple(int(c) for c in args.smtp_connections.split(",")),
            feed_days=args.feed_days,
            history_days=args.history_days,
            history_subscribers=args.history_subscribers,
            plan_processes=args.plan_processes,
            workers_database_url=args.workers_database_url,
            profile=args.profile,
        )
        for name, measure in MEASUREMENTS.items():
            if name in chosen:
                figures.update(measure(context))
    print(_table(figures))
    for note in context.notes:
        print(f"note: {note}")
    print(json.dumps(figures))
    return 0


def _table(figures: Figures) -> str:
    width = max(len(name) for name in figures)
    return "\n".join(f"{name:<{width}}  {value:>12}" for name, value in figures.items())


if __name__ == "__main__":
    sys.exit(main())
