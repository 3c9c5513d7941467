"""A store connection kept for a whole pass: no pool checkout per record.

The worker records each SMTP answer before the connection takes another message, so
the record sits on the sending path. Checking a connection out of the pool and handing
the work to a thread cost more than the record itself (on SQLite a commit of one row in
WAL mode takes tens of microseconds); a slot keeps one connection, and on SQLite it
writes inline.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

# How long an inline SQLite record may wait for the write lock before it moves to a
# thread, and the store's own busy timeout (publisher.store.database) it then uses.
_INLINE_WAIT_MS = 20
_SQLITE_BUSY_MS = 30_000

_P = ParamSpec("_P")
_R = TypeVar("_R")


class Slot:
    """A store connection of one sender, or of the group that records 250s.

    On SQLite an answer is recorded inline, waiting at most ``_INLINE_WAIT_MS`` for the
    database's write lock: when another writer holds it longer (a planning pass writing
    its batch), the record is made again in the slot's thread, which waits as long as
    the store's busy timeout allows, and the event loop (the other connections, and the
    web app in ``publisher run``) goes on meanwhile. Each record is one transaction,
    rolled back when it fails, so making it again is safe. Any other database is always
    written through the slot's thread, so that waiting for the server never holds up the
    other connections.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._inline = engine.dialect.name == "sqlite"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publisher-record")
        self._conn: Connection | None = None

    async def run(
        self, work: Callable[Concatenate[Connection, _P], _R], *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        """``work(connection, *args)``, inline or in the slot's thread."""
        if self._inline:
            try:
                return self._call(work, *args, **kwargs)
            except OperationalError as exc:
                if "locked" not in str(exc.orig):
                    raise
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self._call_patiently, work, *args, **kwargs)
        )

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
            if self._inline:
                _busy_timeout(self._conn, _INLINE_WAIT_MS)
        return self._conn

    def _call(
        self, work: Callable[Concatenate[Connection, _P], _R], *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        return work(self._connection(), *args, **kwargs)

    def _call_patiently(
        self, work: Callable[Concatenate[Connection, _P], _R], *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        conn = self._connection()
        if not self._inline:
            return work(conn, *args, **kwargs)
        _busy_timeout(conn, _SQLITE_BUSY_MS)
        try:
            return work(conn, *args, **kwargs)
        finally:
            _busy_timeout(conn, _INLINE_WAIT_MS)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._close)
        finally:
            self._executor.shutdown(wait=False)

    def _close(self) -> None:
        if self._conn is not None:
            if self._inline:  # the connection goes back to the pool as it came
                _busy_timeout(self._conn, _SQLITE_BUSY_MS)
            self._conn.close()
            self._conn = None


def _busy_timeout(conn: Connection, milliseconds: int) -> None:
    """How long SQLite waits for a lock on this connection (a setting, not a transaction)."""
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {milliseconds:d}")
    conn.commit()  # ends the transaction SQLAlchemy began for the statement
