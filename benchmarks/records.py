"""What recording a 250 costs the worker: one transaction per answer, or per round.

    python benchmarks/records.py [--database-url URL] [--rows 20000] [--group 4]

Queues and claims ``--rows`` messages in an empty store (a SQLite file in a temporary
folder, or the PostgreSQL database given, whose tables it empties), then marks them
sent one transaction each (``mark_sent``, as the worker did before group commit) and
as it does now (``mark_all_sent``, one transaction per ``--group`` answers: a round of
that many connections), each on fresh rows. Prints wall and CPU microseconds per
answer, then one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine
from workers import refill_outbox

from publisher.store.database import open_store
from publisher.store.outbox import claim, mark_all_sent, mark_sent

NOW = datetime(2025, 3, 4, 6, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL to empty (default: a SQLite file)")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=4, help="answers per transaction")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite:///{directory}/publisher.db"
        engine = open_store(url)
        figures: dict[str, object] = {"database": engine.dialect.name, "rows": args.rows}
        for name, record in (
            ("each", _each),
            (f"group{args.group}", _grouped(args.group)),
        ):
            wall, cpu = _measure(engine, args.rows, record)
            figures[f"{name}_wall_us"] = round(wall, 1)
            figures[f"{name}_cpu_us"] = round(cpu, 1)
        engine.dispose()
    width = max(len(key) for key in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))


def _each(conn: Connection, ids: list[int]) -> None:
    for message in ids:
        with conn.begin():
            mark_sent(conn, message, now=NOW)


def _grouped(size: int) -> Callable[[Connection, list[int]], None]:
    def record(conn: Connection, ids: list[int]) -> None:
        for start in range(0, len(ids), size):
            with conn.begin():
                mark_all_sent(conn, [(message, NOW) for message in ids[start : start + size]])

    return record


def _measure(
    engine: Engine, rows: int, record: Callable[[Connection, list[int]], None]
) -> tuple[float, float]:
    """Microseconds of wall clock and of CPU per answer for ``record`` on fresh rows."""
    refill_outbox(engine, b"x" * 28_000, rows)
    with engine.begin() as conn:
        claimed = claim(
            conn, owner="w", limit=rows, lease=timedelta(hours=1), now=datetime.now(UTC)
        )
    ids = [row.id for row in claimed]
    with engine.connect() as conn:
        wall, cpu = time.perf_counter(), time.process_time()
        record(conn, ids)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / rows * 1e6, cpu / rows * 1e6


if __name__ == "__main__":
    main()
