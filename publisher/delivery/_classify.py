"""From what aiosmtplib raised to a :class:`SendResult`.

aiosmtplib has no 4xx/5xx exception classes: a reply's meaning is in its ``code``
(RFC 5321 §4.2.1), and the exception's class only says which command it answered.
Failures with no reply (connection, TLS, timeouts) are TEMPORARY, described so that an
operator can act on them: a certificate that does not verify is named as such.
"""

from __future__ import annotations

import ssl
from typing import TypeVar

from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectResponseError,
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
)

from publisher.delivery._result import Outcome, Refusal, SendResult, Stage, outcome_for

_E = TypeVar("_E", bound=BaseException)


def failure(
    exc: SMTPException | OSError, stage: Stage, *, server: str, timeout: float
) -> SendResult:
    """The result of a send that raised ``exc`` while at ``stage``; ``server`` is host:port."""
    if isinstance(exc, SMTPRecipientsRefused):
        return _all_refused(exc)
    if isinstance(exc, SMTPResponseException):
        if isinstance(exc, SMTPSenderRefused):
            stage = Stage.MAIL
        elif isinstance(exc, SMTPDataError):
            stage = Stage.DATA
        elif isinstance(exc, SMTPAuthenticationError):
            stage = Stage.AUTH
        elif isinstance(exc, SMTPConnectResponseError | SMTPHeloError):
            stage = Stage.CONNECT
        # (A reply to another command, STARTTLS for one, keeps the stage it came in.)
        return SendResult(outcome_for(exc.code), exc.code, exc.message, stage)
    if isinstance(exc, SMTPNotSupported):
        # RFC 6531 §3.2: a non-ASCII address needs a server that offers SMTPUTF8.
        return SendResult(Outcome.PERMANENT, None, exc.message, Stage.MAIL)
    return SendResult(Outcome.TEMPORARY, None, _describe(exc, stage, server, timeout), stage)


def _describe(exc: BaseException, stage: Stage, server: str, timeout: float) -> str:
    """What went wrong when the server gave no reply to branch on."""
    if (cert := _cause(exc, ssl.SSLCertVerificationError)) is not None:
        # A configuration error (a private CA missing from smtp.ca_file, a wrong
        # smtp.host), reported as such and never worked around in plain text.
        host = server.rpartition(":")[0]
        return f"certificate verify failed for host {host}: {cert.verify_message}"
    if (tls := _cause(exc, ssl.SSLError)) is not None:
        return f"TLS handshake with {server} failed: {tls}"
    if isinstance(exc, TimeoutError) and not str(exc):  # the deadline, not a socket read
        return f"timed out after {timeout:g} s ({stage} stage) with {server}"
    return f"{exc} ({stage} stage, {server})"


def _all_refused(exc: SMTPRecipientsRefused) -> SendResult:
    """Every recipient refused: TEMPORARY if any refusal may succeed later."""
    refused = tuple(Refusal(r.recipient, r.code, r.message) for r in exc.recipients)
    permanent = all(r.outcome is Outcome.PERMANENT for r in refused)
    first = next(r for r in refused if (r.outcome is Outcome.PERMANENT) == permanent)
    outcome = Outcome.PERMANENT if permanent else Outcome.TEMPORARY
    return SendResult(outcome, first.code, first.detail, Stage.RCPT, refused)


def _cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of ``kind`` in the chain of causes of ``exc``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
