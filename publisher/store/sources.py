"""Per-source state (ETag, Last-Modified) and the history of collection runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from publisher.store.schema import source_runs, source_state


@dataclass(frozen=True, slots=True)
class SourceRun:
    source: str
    started_at: datetime
    finished_at: datetime
    new: int
    updated: int
    unchanged: int
    not_modified: bool
    error: str | None
    problems: tuple[str, ...]


def load_state(conn: Connection, name: str) -> dict[str, str]:
    row = conn.execute(select(source_state.c.state).where(source_state.c.name == name)).first()
    return dict(row.state) if row is not None else {}


def record_run(conn: Connection, run: SourceRun, *, state: Mapping[str, str] | None) -> None:
    """Record one run; ``state`` replaces the kept state unless it is ``None`` (failure)."""
    conn.execute(
        insert(source_runs).values(
            source=run.source,
            started_at=run.started_at,
            finished_at=run.finished_at,
            new=run.new,
            updated=run.updated,
            unchanged=run.unchanged,
            not_modified=int(run.not_modified),
            error=run.error,
            problems=list(run.problems),
        )
    )
    values: dict[str, object] = {"last_run_at": run.finished_at, "last_error": run.error}
    if run.error is None:
        values["last_success_at"] = run.finished_at
    if state is not None:
        values["state"] = dict(state)
    exists = conn.execute(
        select(source_state.c.name).where(source_state.c.name == run.source)
    ).first()
    if exists is None:
        values.setdefault("state", {})
        conn.execute(insert(source_state).values(name=run.source, **values))
    else:
        conn.execute(update(source_state).where(source_state.c.name == run.source).values(values))


def latest_runs(conn: Connection, names: Sequence[str] | None = None) -> list[SourceRun]:
    """The most recent run of each source."""
    query = select(source_runs).order_by(source_runs.c.id.desc())
    if names is not None:
        query = query.where(source_runs.c.source.in_(names))
    seen: dict[str, SourceRun] = {}
    for row in conn.execute(query):
        if row.source not in seen:
            seen[row.source] = SourceRun(
                source=row.source,
                started_at=row.started_at,
                finished_at=row.finished_at,
                new=row.new,
                updated=row.updated,
                unchanged=row.unchanged,
                not_modified=bool(row.not_modified),
                error=row.error,
                problems=tuple(row.problems),
            )
    return sorted(seen.values(), key=lambda run: run.source)


def last_failed_runs(conn: Connection, names: Sequence[str]) -> dict[str, SourceRun]:
    """The most recent run that ended in an error, for each of these sources that had one."""
    found: dict[str, SourceRun] = {}
    for name in names:  # a handful of sources: one indexed look-up each
        row = conn.execute(
            select(source_runs)
            .where(source_runs.c.source == name, source_runs.c.error.is_not(None))
            .order_by(source_runs.c.started_at.desc(), source_runs.c.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            found[name] = SourceRun(
                source=row.source,
                started_at=row.started_at,
                finished_at=row.finished_at,
                new=row.new,
                updated=row.updated,
                unchanged=row.unchanged,
                not_modified=bool(row.not_modified),
                error=row.error,
                problems=tuple(row.problems),
            )
    return found


def last_successes(conn: Connection) -> dict[str, datetime]:
    """When each source last ran without an error."""
    query = select(source_state.c.name, source_state.c.last_success_at).where(
        source_state.c.last_success_at.is_not(None)
    )
    return {row.name: row.last_success_at for row in conn.execute(query)}
