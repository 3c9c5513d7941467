"""What one send came to: the outcome, the server's reply, and where the dialogue ended.

The outcome follows RFC 5321 §4.2.1: a 2yz reply is a positive completion, 4yz a
transient negative completion (the same command may succeed later), 5yz a permanent
negative completion (it will not). Failures with no reply at all (a refused or dropped
connection, a timeout, a failed TLS handshake) are transient: nothing was accepted, and
a later attempt may well succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from publisher.errors import PublisherError


class DeliveryError(PublisherError):
    """A programming or configuration error: never a mail server's answer.

    ``SmtpTransport.send`` reports whatever the server does as a :class:`SendResult`;
    it raises this only when the call itself is wrong (no recipients, a message that
    is not bytes, an address that cannot go on an SMTP command line) or the settings
    are (an unreadable ``smtp.ca_file``, a username without a password).
    """


class Outcome(StrEnum):
    DELIVERED = "delivered"  # 2yz: the server took responsibility for the message
    TEMPORARY = "temporary"  # 4yz or no reply: try again later
    PERMANENT = "permanent"  # 5yz: do not try again


class Stage(StrEnum):
    """Where in the SMTP dialogue (RFC 5321 §3) a send ended.

    It tells a caller whose fault a failure is: a 5yz at RCPT is about the recipient,
    a 5yz at CONNECT, AUTH or MAIL is about the session (every message would fail
    alike), so it is no reason to suppress the recipient.
    """

    CONNECT = "connect"  # TCP, greeting, EHLO, STARTTLS (RFC 3207) or the TLS handshake
    AUTH = "auth"  # RFC 4954
    MAIL = "mail"  # MAIL FROM
    RCPT = "rcpt"  # RCPT TO
    DATA = "data"  # DATA and the reply to the message's end; delivered sends end here
    # The connection failed between MAIL and the final reply to DATA; which command it
    # was waiting for is unknown. When it was the final reply, the server may have
    # delivered the message all the same (RFC 1047), so a retry can duplicate it.
    TRANSACTION = "transaction"


def outcome_for(code: int) -> Outcome:
    """The outcome a reply code means (RFC 5321 §4.2.1)."""
    if 200 <= code < 300:
        return Outcome.DELIVERED
    if 500 <= code < 600:
        return Outcome.PERMANENT
    # 4yz, and a reply that makes no sense at this point of the dialogue (1yz, 3yz):
    # nothing was accepted, and trying again cannot hurt.
    return Outcome.TEMPORARY


@dataclass(frozen=True, slots=True)
class Refusal:
    """One recipient the server refused at RCPT."""

    recipient: str
    code: int
    detail: str

    @property
    def outcome(self) -> Outcome:
        return outcome_for(self.code)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The result of one ``send``; a mail server's answer never raises.

    A multi-recipient send the server accepted for some recipients only is DELIVERED,
    with the others in ``refused`` (each with its own code); when it refused every
    recipient, the outcome is TEMPORARY if any refusal was 4yz, else PERMANENT, and the
    code and detail are those of the first refusal with that outcome.
    """

    outcome: Outcome
    code: int | None  # the server's reply code; None when there was no reply
    detail: str  # the server's reply text, or what went wrong
    stage: Stage
    refused: tuple[Refusal, ...] = ()

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.DELIVERED
