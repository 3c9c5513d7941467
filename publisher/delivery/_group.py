"""Group commit: the answers of a round of messages recorded in one transaction.

A sender waits for its answer's record before it takes another message, so that at
most ``smtp.connections`` accepted messages are ever unrecorded. With one transaction
per answer the commits were a quarter of the worker's time on SQLite (each writes the
same outbox pages again) and the round trip that bounded it on PostgreSQL. A
:class:`Group` keeps that wait and that bound, and shares the transaction: a sender
says it expects an answer before it sends; an answer to record waits until no other
sender still expects one (their answers join it), or ``patience`` at most, then one
transaction records them all. While a transaction runs in a thread (PostgreSQL, or
SQLite when another writer holds the lock), the answers that arrive meanwhile wait for
the next. Each sender is released when the transaction holding its answer commits, or
gets its error when that fails (then nothing of that group was recorded).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

from sqlalchemy import Connection

from publisher.delivery._slot import Slot

_T = TypeVar("_T")

# How long a recorded answer waits at most for the others of its round.
PATIENCE = 0.001


class Group(Generic[_T]):
    """``write(connection, values)`` commits the values recorded in a round at once."""

    def __init__(
        self,
        slot: Slot,
        write: Callable[[Connection, Sequence[_T]], None],
        *,
        patience: float = PATIENCE,
    ) -> None:
        self._slot = slot
        self._write = write
        self._patience = patience
        self._expected = 0
        self._waiting: list[tuple[_T, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    @contextmanager
    def expect(self) -> Iterator[Answer[_T]]:
        """Around a send: the group waits for its answer, which may or may not be
        recorded with :meth:`Answer.record`."""
        answer = Answer(self)
        self._expected += 1
        try:
            yield answer
        finally:
            if not answer.recorded:
                self._expected -= 1
                self._ready()

    async def _record(self, value: _T) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((value, done))
        self._expected -= 1
        self._ready()
        await done

    def _ready(self) -> None:
        """Start a transaction if answers wait and none is expected, or when the first
        of them has waited ``patience``."""
        if not self._waiting or self._flushing is not None:
            return
        if self._expected == 0:
            self._flush_now()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._patience, self._flush_now)

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is None and self._waiting:
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        group: list[tuple[_T, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    await self._slot.run(self._write, [value for value, _ in group])
                except Exception as exc:  # noqa: BLE001 - each sender of the group gets it
                    _settle(group, exc)
                else:
                    _settle(group, None)
                group = []
        except BaseException:  # cancelled: no sender is left waiting for ever
            for _, done in group + self._waiting:
                done.cancel()
            self._waiting = []
            raise
        finally:
            self._flushing = None


class Answer(Generic[_T]):
    """One expected answer of a :class:`Group`."""

    def __init__(self, group: Group[_T]) -> None:
        self._group = group
        self.recorded = False

    async def record(self, value: _T) -> None:
        """Return once ``value`` is committed with the others of its round."""
        if self.recorded:
            raise RuntimeError("an answer is recorded once")
        self.recorded = True
        await self._group._record(value)


def _settle(group: Sequence[tuple[object, asyncio.Future[None]]], error: Exception | None) -> None:
    for _, done in group:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
