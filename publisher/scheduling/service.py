"""``publisher run``: the scheduler and the web app in one asyncio loop.

Every delivery pass (plan what is due, then send the outbox) holds one lock, so two
never overlap; planning is idempotent, so a job that fires late or twice is harmless.
A pass at start sends whatever came due while the service was down, once, covering the
whole gap (DESIGN.md, "Scheduling after downtime"). Stopping pauses the scheduler, lets
the jobs under way finish (within a bound), then stops the web server and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import uvicorn

# APScheduler 3 ships no type information.
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from sqlalchemy import Engine

from publisher import __version__
from publisher.collect import collect
from publisher.delivery import Transport
from publisher.delivery.planning import PlanReport, look_back, plan
from publisher.delivery.worker import DeliveryReport, Worker
from publisher.errors import PublisherError, ValidationFailed
from publisher.feeds import FeedBuilder
from publisher.feeds.static import BuildReport, build_static
from publisher.feeds.websub import ping_hub
from publisher.rendering.emails import EmailRenderer
from publisher.scheduling.jobs import JobKind, JobSpec, job_table, retry_job
from publisher.scheduling.leader import SchedulerLock
from publisher.settings import Settings
from publisher.store.outbox import Pruned, prune
from publisher.subscriptions.guard import Growth, file_digest, growth, is_confirmed
from publisher.subscriptions.model import Subscriptions
from publisher.taxonomy import Taxonomy
from publisher.web import create_app

log = logging.getLogger(__name__)

TransportFactory = Callable[[], AbstractAsyncContextManager[Transport]]
Clock = Callable[[], datetime]

# A run that starts up to an hour late still runs (APScheduler's default of 1 s skips
# runs silently on a busy machine); runs missed together are coalesced into one.
MISFIRE_GRACE_SECONDS = 3600
JOB_DEFAULTS: dict[str, Any] = {
    "misfire_grace_time": MISFIRE_GRACE_SECONDS,
    "coalesce": True,
    "max_instances": 1,
}
# How often a standing-by `publisher run` asks for the scheduler lock, and the leader
# checks it still holds it.
LEADER_POLL = timedelta(seconds=5)
LEADER_JOB = "leader"
# How long stopping waits for the jobs under way before cancelling them.
STOP_TIMEOUT = timedelta(seconds=60)
# uvicorn's own bound for the requests in flight.
GRACEFUL_SHUTDOWN_SECONDS = 10


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Rules:
    """The subscriptions in force and the renderer built for them, replaced together."""

    subscriptions: Subscriptions
    renderer: EmailRenderer


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one delivery pass queued (``None``: sending only) and sent."""

    planned: PlanReport | None
    delivered: DeliveryReport


class Reload(StrEnum):
    UNCHANGED = "unchanged"
    APPLIED = "applied"
    BROKEN = "broken"  # logged; the rules in force stay
    HELD = "held"  # waits for `publisher check --confirm`


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class ListenError(PublisherError, OSError):
    """The web app could not listen on its address (in use, not ours, not allowed)."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service decides when the server stops.

    ``Server.serve`` replaces the SIGINT/SIGTERM handlers and raises the signal again
    once it has stopped; in this process a signal must first stop the scheduler and the
    sends under way, so the command owns the handlers and sets ``should_exit`` itself.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _route_uvicorn_logs() -> None:
    """uvicorn's lines go to the root handler (ours) in the chosen format. Its startup
    lines and access log stay at INFO, as uvicorn's own configuration has them, even when
    the rest is at WARNING."""
    level = min(logging.INFO, logging.getLogger().getEffectiveLevel())
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


async def _serve_web(server: uvicorn.Server, where: str) -> None:
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn logs why it cannot start (address in use, permission denied), then
        # exits the process; here the service must stop its jobs and the store first.
        raise ListenError(f"the web app cannot listen on {where} (see the log above)") from exc


async def _until_started(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    """Wait until uvicorn listens, or raise why it could not."""
    while not server.started:  # uvicorn offers no event to wait for
        if serving.done():
            await serving  # raises the ListenError
            raise ListenError("the web app stopped before it started")
        await asyncio.sleep(0.02)


class Service:
    """The scheduler, its jobs, and the web app, sharing one event loop and one store."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        taxonomy: Taxonomy,
        subscriptions: Callable[[], Subscriptions],
        renderer: Callable[[Subscriptions], EmailRenderer],
        transport: TransportFactory,
        clock: Clock = _utcnow,
        stop_timeout: timedelta = STOP_TIMEOUT,
        leader_poll: timedelta = LEADER_POLL,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._taxonomy = taxonomy
        self._read_subscriptions = subscriptions
        self._make_renderer = renderer
        self._transport = transport
        self._clock = clock
        self._stop_timeout = stop_timeout
        self._rules: _Rules | None = None
        self._leadership = SchedulerLock(engine)
        self._leading = False
        self._leader_poll = leader_poll
        self._stamp: tuple[int, int] | None = None
        # An edit read but not in force yet: the rules, the file's digest, and the
        # digest a warning was logged for.
        self._pending: tuple[Subscriptions, str, str | None] | None = None
        self._lock = asyncio.Lock()
        self._feeds = FeedBuilder(settings, taxonomy=taxonomy)
        self._feeds_lock = asyncio.Lock()
        self._running: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self.scheduler: AsyncIOScheduler | None = None  # while running
        self.server: uvicorn.Server | None = None

    # -- the rules ---------------------------------------------------------------------

    def load_subscriptions(self) -> Subscriptions:
        """Read ``subscriptions.yaml`` and make it the rules every later pass uses."""
        self._stamp = _file_stamp(self._settings.subscriptions)
        subscriptions = self._read_subscriptions()
        self._apply(subscriptions)
        return subscriptions

    def _apply(self, subscriptions: Subscriptions) -> None:
        """Make ``subscriptions`` the rules in force; bring the digest jobs in line."""
        self._rules = _Rules(subscriptions, self._make_renderer(subscriptions))
        scheduler = self.scheduler
        if scheduler is None or not scheduler.running:
            return
        wanted = {spec.id: spec for spec in self.jobs() if spec.kind is JobKind.DIGEST}
        for job in scheduler.get_jobs():
            if job.id.startswith("digest:") and job.id not in wanted:
                job.remove()
        for spec in wanted.values():
            if scheduler.get_job(spec.id) is None:
                self._add_job(scheduler, spec, {})

    async def reload_if_changed(self) -> Reload:
        """Read ``subscriptions.yaml`` again if it changed since it was last read.

        A broken edit is logged with its problems and the rules in force stay; an edit
        that would mail many more people waits (see :mod:`publisher.subscriptions.guard`)
        until ``publisher check --confirm`` confirms that exact file.
        """
        path = self._settings.subscriptions
        stamp = _file_stamp(path)
        if stamp is None or (stamp == self._stamp and self._pending is None):
            return Reload.UNCHANGED
        if stamp != self._stamp:
            self._stamp, self._pending = stamp, None
            try:
                digest = await asyncio.to_thread(file_digest, path)
                candidate = await asyncio.to_thread(self._read_subscriptions)
            except (ValidationFailed, OSError) as exc:
                log.error(
                    "%s: this edit is not applied; the rules read before stay in force:\n%s",
                    path,
                    exc,
                )
                return Reload.BROKEN
            self._pending = (candidate, digest, None)
        assert self._pending is not None
        candidate, digest, warned = self._pending
        held = await asyncio.to_thread(self._growth_held, candidate, digest)
        if held is not None:
            if warned != digest:
                log.warning(
                    "%s: this edit would mail %d addresses instead of %d; it waits until "
                    "`publisher check --confirm` confirms it (the rules read before stay "
                    "in force)",
                    path,
                    held.after,
                    held.before,
                )
                self._pending = (candidate, digest, digest)
            return Reload.HELD
        self._pending = None
        self._apply(candidate)
        log.info("%s: the edited rules are in force", path)
        return Reload.APPLIED

    def _growth_held(self, candidate: Subscriptions, digest: str) -> Growth | None:
        """The growth that holds ``candidate`` back, or ``None`` when it may apply."""
        limit = self._settings.recipients_growth_limit
        if limit <= 0 or self._rules is None:
            return None
        with self._engine.connect() as conn:
            if is_confirmed(conn, digest):
                return None
            change = growth(
                conn,
                self._rules.subscriptions,
                candidate,
                default_locale=self._settings.default_locale,
                now=self._clock(),
            )
        return change if change.exceeds(limit) else None

    @property
    def subscriptions(self) -> Subscriptions:
        """The rules in force (read on first use when :meth:`run` has not read them)."""
        return self._current_rules().subscriptions

    def _current_rules(self) -> _Rules:
        if self._rules is None:
            self.load_subscriptions()
        return cast(_Rules, self._rules)

    def jobs(self) -> list[JobSpec]:
        """The job table for the current settings and rules."""
        return job_table(self._settings, self.subscriptions)

    # -- the passes --------------------------------------------------------------------

    async def run_pass(self) -> PassReport:
        """Queue everything due now, then send the outbox; one pass at a time."""
        async with self._lock:
            rules = self._current_rules()
            planned = await asyncio.to_thread(
                plan,
                self._engine,
                rules.subscriptions,
                renderer=rules.renderer,
                settings=self._settings,
                now=self._clock(),
            )
            delivered = await self._send()
        log.info("pass: %s, %s", planned, delivered)
        return PassReport(planned, delivered)

    async def send_due(self) -> PassReport:
        """Send what the outbox holds that is due (rows whose backoff has passed)."""
        async with self._lock:
            delivered = await self._send()
        return PassReport(None, delivered)

    async def collect_source(self, name: str) -> PassReport | None:
        """Collect one source; when it found new items, deliver the alerts at once."""
        reports = await collect(
            self._settings, self._engine, taxonomy=self._taxonomy, only=[name], clock=self._clock
        )
        delivered = await self.run_pass() if any(report.new for report in reports) else None
        if any(report.new or report.updated for report in reports):
            # After the alerts, which are more urgent; an edit changes feeds, not mail.
            await self.refresh_feeds()
        return delivered

    async def refresh_feeds(self) -> BuildReport:
        """Rewrite the static feeds that changed; tell the WebSub hub, if there is one."""
        async with self._feeds_lock:
            report = await asyncio.to_thread(
                build_static, self._feeds, self._engine, self._settings.feeds.out_dir
            )
        log.info("feeds: %d written", len(report.written))
        hub = self._settings.feeds.websub_hub
        if hub and report.changed_feeds:
            urls = [f"{self._feeds.base}{path}" for path in report.changed_feeds]
            await ping_hub(hub, urls, user_agent=f"publisher/{__version__}")
        return report

    async def prune(self) -> Pruned:
        """Delete the messages finished before the outbox's memory, and what only they
        needed; beside passes and sends, which it does not wait for."""
        before = look_back(self._settings, self._clock())
        pruned = await asyncio.to_thread(prune, self._engine, before=before)
        if pruned.messages or pruned.bodies or pruned.segments:
            log.info("outbox pruned before %s: %s", before.isoformat(), pruned)
        return pruned

    async def _send(self) -> DeliveryReport:
        async with self._transport() as transport:
            worker = Worker(
                self._engine,
                transport,
                settings=self._settings,
                clock=self._clock,
                lease=self._settings.outbox.lease,
                batch=self._settings.outbox.batch,
            )
            return await worker.run_once()

    # -- running -----------------------------------------------------------------------

    def schedule(self, scheduler: AsyncIOScheduler, *, first_collection: datetime) -> None:
        """Register the job table; collections first run at ``first_collection``."""
        for spec in self.jobs():
            options: dict[str, Any] = {}
            if spec.kind is JobKind.COLLECT:
                options["next_run_time"] = first_collection
            self._add_job(scheduler, spec, options)

    def _add_job(self, scheduler: AsyncIOScheduler, spec: JobSpec, options: dict[str, Any]) -> None:
        scheduler.add_job(
            self._tracked,
            trigger=spec.trigger,
            args=[spec],
            id=spec.id,
            name=spec.id,
            replace_existing=True,
            **JOB_DEFAULTS,
            **options,
        )

    async def _tracked(self, spec: JobSpec) -> None:
        """Run one job, known to the shutdown; a failure is logged, never fatal."""
        # APScheduler's executor runs each coroutine job as a task of its own.
        task = cast(asyncio.Task[Any], asyncio.current_task())
        self._running.add(task)
        try:
            if spec.source is not None:
                await self.collect_source(spec.source)
            elif spec.kind is JobKind.DIGEST:
                await self.run_pass()
            elif spec.kind is JobKind.RELOAD:
                await self.reload_if_changed()
            elif spec.kind is JobKind.PRUNE:
                await self.prune()
            else:
                await self.send_due()
        except Exception:
            log.exception("job %s failed", spec.id)
        finally:
            self._running.discard(task)

    @property
    def idle(self) -> bool:
        """No job and no start pass under way."""
        return not self._running

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop (a signal handler calls this)."""
        self._stop.set()

    async def run(
        self, *, host: str = "127.0.0.1", port: int = 8000, **uvicorn_options: Any
    ) -> None:
        """Serve the web app and run the jobs until :meth:`request_stop`."""
        if self._rules is None:  # read at start, unless the caller just did
            self.load_subscriptions()
        scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self.scheduler = scheduler
        _route_uvicorn_logs()
        config = uvicorn.Config(
            create_app(self._settings, self._engine),
            host=host,
            port=port,
            server_header=False,
            ws="none",  # the app has no WebSocket routes
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            log_config=None,  # through our handler: --log-format json applies to it too
            **uvicorn_options,
        )
        self.server = server = _Server(config)
        serving = asyncio.create_task(_serve_web(server, f"{host}:{port}"), name="web")
        try:
            await _until_started(server, serving)
            scheduler.start()
            if await asyncio.to_thread(self._leadership.try_acquire):
                self._lead(scheduler)
            else:
                log.info("another `publisher run` holds the scheduler: sending and serving")
                self._stand_by(scheduler)
            stopping = asyncio.create_task(self._stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        finally:
            await self._shut_down(scheduler, server, serving)
            await asyncio.to_thread(self._leadership.release)
        await serving  # re-raises what stopped the web server early, if anything did

    @property
    def leading(self) -> bool:
        """True while this process holds the scheduler (always, on SQLite)."""
        return self._leading

    def _lead(self, scheduler: AsyncIOScheduler) -> None:
        """Run the whole job table: collections, digests, reloads, retries."""
        self._leading = True
        if scheduler.get_job(LEADER_JOB) is not None:
            scheduler.remove_job(LEADER_JOB)
        self.schedule(scheduler, first_collection=datetime.now(UTC))
        if self._leadership.shared:
            scheduler.add_job(
                self._check_leadership,
                trigger=IntervalTrigger(seconds=self._leader_poll.total_seconds()),
                id=LEADER_JOB,
                replace_existing=True,
                **JOB_DEFAULTS,
            )
        # Whatever came due while no one led goes now, once.
        self._spawn(self.run_pass(), name="start pass")
        self._spawn(self.refresh_feeds(), name="feeds at start")

    def _stand_by(self, scheduler: AsyncIOScheduler) -> None:
        """Send what is due (any number of processes may) and try to lead every so often."""
        self._leading = False
        for job in scheduler.get_jobs():
            job.remove()
        retry = retry_job()
        self._add_job(scheduler, retry, {})
        scheduler.add_job(
            self._check_leadership,
            trigger=IntervalTrigger(seconds=self._leader_poll.total_seconds()),
            id=LEADER_JOB,
            replace_existing=True,
            **JOB_DEFAULTS,
        )

    async def _check_leadership(self) -> None:
        scheduler = self.scheduler
        if scheduler is None:
            return
        if self._leading:
            if not await asyncio.to_thread(self._leadership.still_held):
                log.warning("lost the scheduler lock: standing by")
                self._stand_by(scheduler)
            return
        try:
            acquired = await asyncio.to_thread(self._leadership.try_acquire)
        except Exception:
            log.exception("cannot ask for the scheduler lock")
            return
        if acquired:
            log.info("took over the scheduler")
            self._lead(scheduler)

    def _spawn(self, coroutine: Coroutine[Any, Any, object], *, name: str) -> None:
        async def tracked() -> None:
            try:
                await coroutine
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.create_task(tracked(), name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _shut_down(
        self, scheduler: AsyncIOScheduler, server: uvicorn.Server, serving: asyncio.Task[None]
    ) -> None:
        log.info("stopping: no new jobs; waiting for the jobs under way")
        if scheduler.running:
            scheduler.pause()  # no job starts from now on; running ones go on
        if self._running:
            _, late = await asyncio.wait(
                set(self._running), timeout=self._stop_timeout.total_seconds()
            )
            for task in late:
                log.warning("%s did not finish in time: cancelled", task.get_name())
                task.cancel()
            if late:
                await asyncio.wait(late)
        if scheduler.running:
            scheduler.shutdown(wait=False)
        server.should_exit = True
        await asyncio.wait({serving})
        self._engine.dispose()
        log.info("stopped")
