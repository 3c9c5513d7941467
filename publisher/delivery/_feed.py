"""The rows a worker sends, handed to its senders one at a time.

Rows come in claimed batches. The next batch is claimed while the last rows of the
current one are still being sent, so the connections do not stand idle while the store
answers. The suppression list is read once per batch, right after its claim commits,
and read again for the rows still waiting whenever the last reading is older than
``recheck``: an address suppressed while a batch is under way is honoured for every
message of it that starts later than that, whatever the batch's size and the rate.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from publisher.store.outbox import Claimed
from publisher.unsubscribe import normalize_address


@dataclass(frozen=True, slots=True)
class Checked:
    """Which of some addresses were suppressed, read no earlier than ``at``."""

    suppressed: frozenset[str]  # normalized addresses
    at: float  # time.monotonic() when the reading started


@dataclass(frozen=True, slots=True)
class Batch:
    rows: list[Claimed]
    checked: Checked  # read after the claim committed


class Feed:
    """``take()`` gives the next row and whether its recipient is suppressed, or ``None``
    when the outbox has nothing more due (or ``stop`` is set and the claimed rows are
    all handed out, or :meth:`halt` was called)."""

    def __init__(
        self,
        *,
        claim: Callable[[], Awaitable[Batch]],
        check: Callable[[list[str]], Awaitable[Checked]],
        recheck: float,
        ahead: int,
        stop: asyncio.Event | None = None,
    ) -> None:
        self._claim = claim
        self._check = check
        self._recheck = recheck
        self._ahead = ahead  # claim the next batch when this few rows are left
        self._stop = stop
        self._rows: deque[Claimed] = deque()
        self._checked = Checked(frozenset(), 0.0)
        self._next: asyncio.Future[Batch] | None = None
        self._exhausted = False
        self._halted = False
        self._lock = asyncio.Lock()

    async def take(self) -> tuple[Claimed, bool] | None:
        async with self._lock:  # one reader of the store at a time; the others wait
            if self._halted or (not self._rows and not await self._refill()):
                return None
            if time.monotonic() - self._checked.at >= self._recheck:
                recipients = [row.recipient for row in self._rows]
                self._checked = await self._check(recipients)
            row = self._rows.popleft()
            if len(self._rows) <= self._ahead:
                self._claim_ahead()
            return row, normalize_address(row.recipient) in self._checked.suppressed

    def halt(self) -> None:
        """Hand out nothing more (the rows left are leased, and claimed again later)."""
        self._halted = True

    async def aclose(self) -> None:
        """Wait for a claim under way: its rows stay leased until the lease runs out."""
        if self._next is not None:
            await asyncio.gather(self._next, return_exceptions=True)
            self._next = None

    def _stopped(self) -> bool:
        return self._exhausted or self._halted or (self._stop is not None and self._stop.is_set())

    def _claim_ahead(self) -> None:
        if self._next is None and not self._stopped():
            self._next = asyncio.ensure_future(self._claim())

    async def _refill(self) -> bool:
        self._claim_ahead()
        if self._next is None:
            return False
        try:
            batch = await self._next
        finally:
            self._next = None
        if not batch.rows:
            self._exhausted = True
            return False
        self._rows.extend(batch.rows)
        self._checked = batch.checked
        return True
