"""A mail server that misbehaves at random: every message ends delivered or failed with
its reason, none is delivered twice, and the sender pauses after a run of errors and
resumes by itself.

The server answers a quarter of the commands with a fault, chosen at random (seeded, the
seed printed): 421 or 451 at MAIL; 450, 452, 550 or 553 at RCPT; 451 or 554 at DATA, or
the connection dropped in the middle of DATA, or no answer at all until the client's
timeout. A failed TLS handshake has its own test in test_smtp.py.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import random
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select

from publisher.delivery import SmtpTransport
from publisher.delivery.worker import Worker
from publisher.store.outbox import RetryPolicy, Status, outbox
from tests.delivery.conftest import DROP, STALL, Handler, MailServer
from tests.delivery.test_worker import SETTINGS, Clock, _enqueue

MESSAGES = 150
FAULTS = {
    "MAIL": ["421 4.3.2 Service shutting down", "451 4.3.0 Try later"],
    "RCPT": [
        "450 4.2.1 Mailbox busy",
        "452 4.2.2 Mailbox full",
        "550 5.1.1 No such user",
        "553 5.1.3 Bad address syntax",
    ],
    "DATA": ["451 4.3.0 Local error", "554 5.6.0 Rejected", DROP, STALL],
}


class RandomFaults(Handler):
    """The test server's handler, with a random fault for a share of the commands."""

    def __init__(self, rng: random.Random, share: float) -> None:
        super().__init__()
        self.rng, self.share = rng, share
        self.injected: Counter[str] = Counter()

    async def _fault(self, command: str, server: Any) -> str | None:
        with self.lock:
            fault = None
            if self.rng.random() < self.share:
                fault = self.rng.choice(FAULTS[command])
                self.injected[f"{command} {fault[:3]}"] += 1
            if fault is not None:
                self.faults[command].append(fault)
        return await super()._fault(command, server)


def test_a_misbehaving_server_loses_nothing_and_sends_nothing_twice(
    engine: Engine, start_server: Callable[..., MailServer]
) -> None:
    """150 messages through a server faulting at random: each ends sent or failed with
    the server's reason, 4xx are retried with backoff, 5xx fail at once, nothing twice."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    handler = RandomFaults(random.Random(seed), share=0.25)
    server = start_server(handler=handler)
    recipients = [f"reader{n}@example.net" for n in range(MESSAGES)]
    _enqueue(engine, recipients)
    clock = Clock()
    policy = RetryPolicy(base=timedelta(minutes=1), max_attempts=6)
    smtp = server.settings(
        connections=3, timeout=timedelta(seconds=1), error_threshold=6, pause=timedelta(seconds=1)
    )
    pauses = 0

    async def passes() -> int:
        nonlocal pauses
        for _ in range(12):
            async with SmtpTransport(smtp) as transport:
                worker = Worker(engine, transport, settings=SETTINGS, clock=clock, policy=policy)
                await worker.run_once()
                pauses += transport.stats.pauses
            clock.now += timedelta(hours=7)  # past any backoff (its ceiling is 6 hours)
            if _count(engine, Status.QUEUED) == 0:
                return _ + 1
        return -1

    rounds = asyncio.run(passes())
    assert rounds > 0, f"seed {seed}: messages still queued after 12 passes"
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.recipient, outbox.c.status, outbox.c.last_code, outbox.c.last_error)
        ).all()
    arrived = Counter(
        email.message_from_bytes(m.content, policy=email.policy.default)["To"]
        for m in server.handler.messages
    )
    sent = {row.recipient for row in rows if row.status == Status.SENT}
    failed = [row for row in rows if row.status == Status.FAILED]
    print(f"seed {seed}: injected {dict(handler.injected)}; sent {len(sent)}, "
          f"failed {len(failed)}, pauses {pauses}, passes {rounds}")  # fmt: skip
    assert {row.status for row in rows} <= {Status.SENT, Status.FAILED}
    assert len(rows) == MESSAGES
    assert set(arrived) == sent, f"seed {seed}: the server's copies differ from what we record"
    assert max(arrived.values()) == 1, f"seed {seed}: a message arrived twice"
    # A permanent answer, or temporary ones (or lost connections, which have no code)
    # until the attempts ran out: each says why.
    for row in failed:
        assert row.last_error, row
    codes = [row.last_code for row in failed if row.last_code is not None]
    assert any(code >= 500 for code in codes), f"seed {seed}: no 5xx was drawn"
    assert sum(handler.injected.values()) > 0


def _count(engine: Engine, status: Status) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(outbox.c.id).where(outbox.c.status == status)).all())
