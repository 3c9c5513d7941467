"""Delivery: handing rendered messages to a mail server.

A transport takes the pre-built bytes of one message, its envelope sender and its
recipients, and says what became of them as a :class:`SendResult`: DELIVERED,
TEMPORARY (try again later) or PERMANENT (do not), with the server's reply. It raises
:class:`DeliveryError` only when the call or the settings are wrong. The outbox decides
what to retry; a transport never sends a message twice by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from publisher.delivery._result import (
    DeliveryError,
    Outcome,
    Refusal,
    SendResult,
    Stage,
    outcome_for,
)
from publisher.delivery.smtp import SmtpTransport, TransportStats

__all__ = [
    "DeliveryError",
    "Outcome",
    "Refusal",
    "SendResult",
    "SmtpTransport",
    "Stage",
    "Transport",
    "TransportStats",
    "outcome_for",
]


class Transport(Protocol):
    """Anything that can send a built message: SMTP, or a capture for previews and tests."""

    async def send(
        self, *, sender: str, recipients: Sequence[str], message: bytes
    ) -> SendResult: ...
