"""How fast the transport may send: a shared rate limit, and a pause when the server is sick.

Both are shared by every connection of one transport, as listmonk's sending pipeline
does: the rate limit caps the whole pool, and the error threshold stops the whole pool
for a while instead of burning the outbox on a server that is down.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class RateLimiter:
    """Spaces sends evenly at ``per_second`` at most (0: unlimited), without bursts.

    Each caller reserves the next free slot, one interval after the previous one, and
    sleeps until it comes; a slot in the past is moved to now, so an idle transport
    does not save up a burst.
    """

    def __init__(self, per_second: float) -> None:
        self._interval = 1 / per_second if per_second > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


class ErrorBrake:
    """Pauses sending for ``pause`` seconds after ``threshold`` consecutive errors.

    A send asks :meth:`wait` before it starts, which returns the current generation,
    and reports under it to :meth:`record`. Each pause starts a new generation, so the
    errors of sends that were already under way when the pause began do not count
    towards the next one. ``threshold`` 0 never pauses.
    """

    def __init__(self, threshold: int, pause: float, *, server: str) -> None:
        self._threshold = threshold
        self._pause = pause
        self._server = server
        self._errors = 0
        self._until = 0.0
        self._paused = False
        self._generation = 0

    async def wait(self) -> int:
        loop = asyncio.get_running_loop()
        while (delay := self._until - loop.time()) > 0:
            await asyncio.sleep(delay)
        if self._paused:
            self._paused = False
            log.info("SMTP %s: resuming after a pause of %g s", self._server, self._pause)
        return self._generation

    def record(self, *, failed: bool, generation: int, detail: str) -> bool:
        """Count one send's result; True when it starts a pause."""
        if generation != self._generation:
            return False
        if not failed:
            self._errors = 0
            return False
        self._errors += 1
        if not self._threshold or self._errors < self._threshold:
            return False
        self._errors = 0
        self._generation += 1
        self._paused = True
        self._until = asyncio.get_running_loop().time() + self._pause
        log.warning(
            "SMTP %s: %d consecutive errors, the last: %s; pausing for %g s",
            self._server,
            self._threshold,
            detail,
            self._pause,
        )
        return True
