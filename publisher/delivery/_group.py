"""Group commit: the answers of a round of messages recorded in one transaction.

A sender waits for its answer's record before it takes another message, so that at
most ``smtp.connections`` accepted messages are ever unrecorded. With one transaction
per answer the commits were a quarter of the worker's time on SQLite (each writes the
same outbox pages again) and the round trip that bounded it on PostgreSQL. A
:class:`Group` keeps that wait and that bound, and shares the transaction: a sender
says it expects an answer before it sends; an answer to record waits until no other
sender still expects one (their answers join it), or ``patience`` at most, then one
transaction records them all, written by the sender whose answer came last (by a task
when ``patience`` ran out). While a transaction runs in a thread (PostgreSQL, or
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
        self._writing = False
        self._tasks: set[asyncio.Task[None]] = set()  # writes started by the timer

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
        if self._expected == 0 and not self._writing:
            # The last answer of the round writes the group itself: no task to wake,
            # no turn of the event loop (each a chance for another thread to take
            # the interpreter for milliseconds while this one waits).
            await self._write_group()
        else:
            self._ready()
        await done

    def _ready(self) -> None:
        """Write the group if answers wait and none is expected, or when the first of
        them has waited ``patience``; by a task, as no sender is at hand."""
        if not self._waiting or self._writing:
            return
        if self._expected == 0:
            self._write_soon()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._patience, self._write_soon)

    def _write_soon(self) -> None:
        self._timer = None
        if self._waiting and not self._writing:
            task = asyncio.create_task(self._write_group())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write_group(self) -> None:
        """One transaction for every answer waiting; then the next group, if its
        answers came in meanwhile (a transaction in a thread), is made ready."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group, self._waiting = self._waiting, []
        self._writing = True
        try:
            await self._slot.run(self._write, [value for value, _ in group])
        except Exception as exc:  # noqa: BLE001 - each sender of the group gets it
            _settle(group, exc)
        except BaseException:  # cancelled: no sender is left waiting for ever
            for _, done in group:
                done.cancel()
            raise
        else:
            _settle(group, None)
        finally:
            self._writing = False
        self._ready()


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
