"""One mail transaction (RFC 5321 §3.3) on an aiosmtplib connection, the message sent as is.

aiosmtplib's ``sendmail`` runs regular expressions over the whole message each time:
once to count its size for SIZE (RFC 1870), then again to turn lone CR and LF into
CRLF and to double every period that starts a line (RFC 5321 §4.5.2). On a 28 KB
message those passes cost more than the rest of a send. Our messages are built with
CRLF line endings and no line of them starts with a period (header fields, base64 and
MIME delimiters never do): the worker says so with the :class:`CanonicalMessage` type,
which is sent as it is. Other bytes are checked with a few ``count`` and ``find`` calls
(cheaper than the substitutions, still ~0.1 ms on 28 KB) and go through aiosmtplib's
own functions only when they do need them. Either way the bytes on the wire are
exactly ``sendmail``'s.

:func:`send_mail` is ``sendmail`` otherwise, built on the client's protocol's public
``write`` and ``read_response``: the same commands, the same replies accepted, the same
exceptions raised (the transport turns them into a :class:`SendResult`), the connection
closed when ``execute_command`` would close it, and the same RSET after a refusal. It
does without aiosmtplib's timer per reply when the caller holds a deadline over the
whole transaction, as the transport does.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from functools import lru_cache

from aiosmtplib import (
    SMTP,
    SMTPDataError,
    SMTPNotSupported,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPStatus,
    SMTPTimeoutError,
)
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    PERIOD_REGEX,
    normalize_message_line_endings,
)

# A dot-atom address (RFC 5322 §3.4.1) with a plain domain: aiosmtplib's parse_address
# (email.utils.parseaddr, then its injection check) returns such an address unchanged,
# so it needs neither; anything else goes through aiosmtplib's own quote_address.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
# RFC 5321 §4.1.1.3: 251 "User not local; will forward" accepts the recipient too.
_RCPT_OK = frozenset({SMTPStatus.completed, SMTPStatus.will_forward})


class CanonicalMessage(bytes):
    """The bytes of a message already in the form DATA transmits (RFC 5321 §4.5.2): CRLF
    line endings, a CRLF at the end, and no line that starts with a period.

    Made only by code that guarantees it (the worker, for a template whose
    ``canonical`` says so: checked once per template, the personal parts safe by
    construction); the transport then sends it with no pass over it at all. A marker
    type, as markupsafe's ``Markup`` marks text that needs no more escaping; any other
    ``bytes`` are checked (see :func:`data_payload`).
    """

    __slots__ = ()


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` has CRLF line endings only and no line starting with a period."""
    crlf = data.count(b"\r\n")
    return (
        data.count(b"\n") == crlf
        and data.count(b"\r") == crlf
        and not data.startswith(b".")
        and b"\n." not in data
    )


def data_payload(message: bytes) -> tuple[bytes, int]:
    """What DATA transmits for ``message`` (CRLF line endings, leading periods doubled,
    then the ending ``.`` line), and its size for SIZE: the octets of the message with
    its CRLFs, before the periods are doubled (RFC 1870 §3)."""
    if type(message) is CanonicalMessage:
        return message + b".\r\n", len(message)
    if is_canonical(message):
        normalized = message if message.endswith(b"\r\n") else message + b"\r\n"
        return normalized + b".\r\n", len(normalized)
    normalized = normalize_message_line_endings(message)
    size = len(normalized)
    return PERIOD_REGEX.sub(b"..", normalized) + b".\r\n", size


@lru_cache(maxsize=64)
def _reverse_path(address: str, encoding: str) -> bytes:
    """The sender is the same for every message: quoted once."""
    return _path(address, encoding)


def _path(address: str, encoding: str) -> bytes:
    """``<address>`` as MAIL and RCPT carry it; ValueError as aiosmtplib raises it."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return b"<" + address.encode(encoding) + b">"
    return quote_address(address).encode(encoding)


async def send_mail(
    client: SMTP,
    sender: str,
    recipients: Sequence[str],
    message: bytes,
    *,
    options: list[str],
    timeout: float | None,
) -> tuple[dict[str, SMTPResponse], str]:
    """``client.sendmail(sender, recipients, message, mail_options=options)``, without
    its passes over the message. The client must be connected and past EHLO, and used
    by no one else meanwhile (the transport lends each connection to one send at once).
    ``timeout`` is per reply; None when the caller holds a deadline over the whole.

    Returns the recipients refused (when some were accepted) and the reply to the end of
    the data; raises as ``sendmail`` does: ValueError for an address that cannot go on
    a command line (before anything is sent), SMTPNotSupported, SMTPSenderRefused,
    SMTPRecipientsRefused, SMTPDataError, SMTPServerDisconnected, SMTPTimeoutError.
    """
    encoding = "utf-8" if any(o.lower() == "smtputf8" for o in options) else "ascii"
    reverse_path = _reverse_path(sender, encoding)
    forward_paths = [_path(address, encoding) for address in recipients]
    if encoding == "utf-8" and not client.supports_extension("smtputf8"):
        raise SMTPNotSupported("SMTPUTF8 is not supported by this server")
    payload, size = data_payload(message)
    if client.supports_extension("size"):
        options = [f"size={size}", *options]
    mail = b" ".join([b"MAIL FROM:" + reverse_path, *(o.encode("ascii") for o in options)])
    if COMMAND_INJECTION_REGEX.search(mail):
        raise ValueError("Command arg contains a prohibited control character")
    try:
        reply = await _ask(client, mail + b"\r\n", timeout)
        if reply.code != SMTPStatus.completed:
            raise SMTPSenderRefused(reply.code, reply.message, sender)
        refused: list[SMTPRecipientRefused] = []
        for address, path in zip(recipients, forward_paths, strict=True):
            reply = await _ask(client, b"RCPT TO:" + path + b"\r\n", timeout)
            if reply.code not in _RCPT_OK:
                refused.append(SMTPRecipientRefused(reply.code, reply.message, address))
        if len(refused) == len(recipients):
            raise SMTPRecipientsRefused(refused)
        reply = await _ask(client, b"DATA\r\n", timeout)
        if reply.code != SMTPStatus.start_input:
            raise SMTPDataError(reply.code, reply.message)
        reply = await _ask(client, payload, timeout)
        if reply.code != SMTPStatus.completed:
            raise SMTPDataError(reply.code, reply.message)
    except (SMTPResponseException, SMTPRecipientsRefused):
        # As sendmail does: reset the envelope for the next message (RFC 5321 §4.1.1.5).
        with contextlib.suppress(ConnectionError, SMTPResponseException):
            await client.rset()
        raise
    return {r.recipient: SMTPResponse(r.code, r.message) for r in refused}, reply.message


async def _ask(client: SMTP, data: bytes, timeout: float | None) -> SMTPResponse:
    """Send a command line (or the message), and read the reply: ``execute_command``
    without its per-argument checks (the paths are checked above) and, with no timeout,
    without a timer per reply."""
    protocol = client.protocol
    if protocol is None:
        raise SMTPServerDisconnected("Server not connected")
    try:
        # write() does not yield, and read_response() arms the protocol for the reply
        # before it does: nothing the server sends can come in between and be dropped.
        protocol.write(data)
        reply = await protocol.read_response(timeout=timeout)
    except (SMTPServerDisconnected, SMTPTimeoutError):
        client.close()  # as aiosmtplib does: the dialogue is out of step
        raise
    if reply.code == SMTPStatus.domain_unavailable:
        client.close()  # RFC 5321 §3.8: the server is closing the channel; so do we
    return reply
