"""Rendering the bodies of a planning pass, in this process or in several.

A body (render, MIME template, stored form) costs a few milliseconds and depends only on
the rule, the items and the period, so a large pass spreads them over worker processes
while this one matches and writes the outbox. Results come back in the order asked, so
what is queued, and the bytes of every body, are the same either way.

Workers are forked when this process runs no other thread (``publisher send``): they
start at once and inherit the renderer with its caches. Otherwise (``publisher run``,
with its scheduler and web server) they come from a ``forkserver`` and rebuild the
renderer: forking a process that runs threads can copy a lock one of them holds.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from multiprocessing.context import BaseContext
from typing import Any

from publisher.delivery.message import MessageTemplate
from publisher.rendering.emails import EmailRenderer
from publisher.settings import Settings
from publisher.store.items import StoredItem
from publisher.subscriptions.model import Rule

# Below this many bodies, starting processes (about a second) costs more than it saves.
PARALLEL_FROM = 400
# Bodies per task sent to a worker, and tasks in flight per worker: enough to keep
# them busy, few enough that memory stays flat.
_CHUNK = 16
_AHEAD = 4


# A body's stored form, and the segments it shows that no earlier body of the pass did.
Made = tuple[bytes, dict[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class BodyJob:
    """One body to render: an alert (one item) or a digest for ``period``."""

    rule: Rule
    item_ids: tuple[str, ...]
    period: tuple[datetime, datetime] | None  # None: an alert


class BodyMaker:
    """Renders a job into the stored form of its message template."""

    def __init__(
        self,
        renderer: EmailRenderer,
        settings: Settings,
        items: Mapping[str, StoredItem],
        *,
        now: datetime,
    ) -> None:
        self.renderer = renderer
        self.settings = settings
        self.items = items
        self.now = now
        # The segments this maker has handed out: each goes with the first body that
        # shows it, for the writer to store before that body.
        self._handed: set[bytes] = set()
        name, address = parseaddr(settings.sender.from_)
        self._list_name = name or settings.list_id
        self.domain = address.rpartition("@")[2] or "localhost"

    def forget_handed(self) -> None:
        """Hand out every segment again, with the first body that shows it."""
        self._handed = set()

    def __call__(self, job: BodyJob) -> Made:
        default_locale = self.settings.default_locale
        items = [self.items[i] for i in job.item_ids]
        if job.period is None:
            rendered = self.renderer.render_alert(
                items[0], rule=job.rule, default_locale=default_locale
            )
        else:
            rendered = self.renderer.render_digest(
                items,
                rule=job.rule,
                default_locale=default_locale,
                period_start=job.period[0],
                period_end=job.period[1],
            )
        template = MessageTemplate.build(
            rendered,
            sender=self.settings.sender.from_,
            reply_to=self.settings.sender.reply_to,
            list_id=self.settings.list_id,
            list_name=self._list_name,
            domain=self.domain,
            date=self.now,
        )
        new: dict[bytes, bytes] = {}
        for segment in template.segments:
            if segment.digest not in self._handed:
                self._handed.add(segment.digest)
                new[segment.digest] = segment.data
        return template.to_bytes(), new


def default_processes() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_bodies(maker: BodyMaker, jobs: Sequence[BodyJob], *, processes: int) -> Iterator[Made]:
    """Each job's body, in order; in ``processes`` workers when there are enough jobs.
    A segment comes with the first body that shows it, in each process: the writer
    stores it before that body, and may be handed it again (one per process)."""
    if processes <= 1 or len(jobs) < PARALLEL_FROM:
        yield from map(maker, jobs)
        return
    if threading.active_count() == 1:
        # Nothing else runs here: forked workers start at once, with warm caches.
        context: BaseContext = multiprocessing.get_context("fork")
        initializer: Callable[..., None] = _adopt_maker
        initargs: tuple[Any, ...] = (maker,)
    else:
        needed = {i for job in jobs for i in job.item_ids}
        items = {i: item for i, item in maker.items.items() if i in needed}
        context = multiprocessing.get_context("forkserver")
        initializer = _start_worker
        initargs = (maker.renderer.recipe(), maker.settings, items, maker.now)
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=initializer, initargs=initargs
    ) as pool:
        chunks = (jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK))
        in_flight: deque[Future[list[Made]]] = deque()
        for chunk in chunks:
            in_flight.append(pool.submit(_render_chunk, chunk))
            if len(in_flight) >= processes * _AHEAD:
                yield from in_flight.popleft().result()
        while in_flight:
            yield from in_flight.popleft().result()


_worker_maker: BodyMaker | None = None


def _adopt_maker(maker: BodyMaker) -> None:
    global _worker_maker
    maker.forget_handed()  # this process hands out its own
    _worker_maker = maker


def _start_worker(
    recipe: dict[str, Any], settings: Settings, items: dict[str, StoredItem], now: datetime
) -> None:
    global _worker_maker
    _worker_maker = BodyMaker(EmailRenderer(**recipe), settings, items, now=now)


def _render_chunk(jobs: Iterable[BodyJob]) -> list[Made]:
    assert _worker_maker is not None, "the worker was not started"
    return [_worker_maker(job) for job in jobs]
