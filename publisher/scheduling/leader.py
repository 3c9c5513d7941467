"""Which ``publisher run`` holds the scheduler: one per database, another when it dies.

On PostgreSQL the holder keeps a session-level advisory lock (``pg_try_advisory_lock``)
on a connection of its own, held open for as long as it leads; when its process dies,
PostgreSQL ends the session and the lock is free for the next one to take. Every other
``publisher run`` serves the web app and sends from the outbox, and tries again every
few seconds. On SQLite, a single-machine store, the one process always leads.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# pg advisory lock keys are 64-bit integers: "publishr" as bytes.
LOCK_KEY = int.from_bytes(b"publishr", "big") & 0x7FFF_FFFF_FFFF_FFFF


class SchedulerLock:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    @property
    def shared(self) -> bool:
        """True when other processes may compete for the lock (PostgreSQL)."""
        return self._engine.dialect.name == "postgresql"

    @property
    def held(self) -> bool:
        return not self.shared or self._connection is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process holds it now."""
        if self.held:
            return self.still_held()
        connection = self._engine.connect()
        try:
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
                ).scalar()
            )
            connection.commit()  # the lock belongs to the session, not the transaction
        except SQLAlchemyError:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        log.info("this process holds the scheduler lock")
        return True

    def still_held(self) -> bool:
        """False once the session that holds the lock is gone (database restarted)."""
        if not self.shared:
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except SQLAlchemyError:
            log.warning("the scheduler lock's database session is gone: lock lost")
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            self._connection.commit()
        except SQLAlchemyError:
            log.debug("unlock failed; closing the session releases the lock anyway")
        self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            connection.invalidate()  # the session may be dead: close it for good
        with contextlib.suppress(SQLAlchemyError):
            connection.close()
