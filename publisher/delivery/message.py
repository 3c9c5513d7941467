"""The MIME message: built once per rendered email, personalized per recipient as bytes.

``EmailMessage.as_bytes()`` costs about a millisecond, so it is not called per
recipient. :meth:`MessageTemplate.build` folds and encodes the shared header fields
once (ASCII ones with the stdlib's ``email.policy.SMTP``; non-ASCII subjects and
display names with our own RFC 2047 encoder, because the stdlib's folder turns the
space between two encoded-words into folding whitespace, which RFC 2047 §6.2 readers
drop) and prepares the two parts once;
:meth:`MessageTemplate.personalize` writes the three personal fields (To, Message-ID,
List-Unsubscribe), splices the recipient's unsubscribe URL into each part's base64 and
joins the pieces. The result is ``multipart/alternative`` (RFC 2046 §5.1.4): text/plain
first, then text/html, the last being the preferred one; both UTF-8 in base64, which
survives any 7-bit hop.

Headers beyond those every message carries (DESIGN.md, Headers):

- ``Auto-Submitted: auto-generated`` (RFC 3834 §5): the message comes from a program,
  so vacation responders must not answer it (§2). ``Precedence: bulk`` is not sent:
  it was never standardized (RFC 2076 lists it as "non-standard, controversial, discouraged")
  and says nothing Auto-Submitted and List-Id do not.
- ``Content-Language`` (RFC 3282) with the rule's locale as a BCP 47 tag.
"""

from __future__ import annotations

import hashlib
import html
import re
import struct
import zlib
from base64 import b32encode
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, getaddresses
from functools import lru_cache
from itertools import chain

from publisher.delivery._dkim import SIGNED_HEADERS, DkimSigner, signer_from_settings
from publisher.delivery._headers import (
    check_address,
    check_angle_value,
    clean,
    fold,
    list_unsubscribe_field,
    phrase_field,
    to_field,
    unstructured_field,
)
from publisher.delivery._parts import Piece, Segment, SplicedPart, canonical_text
from publisher.delivery._result import DeliveryError
from publisher.delivery._transaction import is_canonical
from publisher.rendering.emails import UNSUBSCRIBE_URL_MARK, RenderedEmail, Shared
from publisher.unsubscribe import ONE_CLICK_BODY

__all__ = [
    "SIGNED_HEADERS",
    "DkimSigner",
    "MessageTemplate",
    "make_message_id",
    "signer_from_settings",
]

# Where the personal fields go in the shared header block. NUL never survives clean()
# or the encoders, so no content can forge one.
_TO = b"\x00to\x00"
_MESSAGE_ID = b"\x00message-id\x00"
_LIST_UNSUBSCRIBE = b"\x00list-unsubscribe\x00"
_MARKS = re.compile(b"(\x00[a-z-]+\x00)")
_ORDER = [_TO, _MESSAGE_ID, _LIST_UNSUBSCRIBE]

# to_bytes(): magic, format version, then zlib of length-prefixed fields. Version 1
# held each half of a part as bytes; version 2 as byte runs with segments between them,
# named by digest (_pack_pieces).
_MAGIC = b"publisher-message"
_VERSION = 2
_READS = (1, 2)
_FIELDS = 7
_LENGTH = struct.Struct(">I")

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*$")
_LIST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")


def make_message_id(*, key: str, domain: str) -> str:
    """``<…@domain>``, the same for the same key: a retried send keeps its Message-ID.

    RFC 5322 §3.6.4 wants it unique to this message; the key (the outbox's dedupe key
    and the recipient) is, and the hash keeps it from showing the address.
    """
    _check_domain(domain)
    digest = hashlib.sha256(b"publisher.message-id\x00" + key.encode("utf-8")).digest()
    return f"<{b32encode(digest[:20]).decode('ascii').lower()}@{domain}>"


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """One message for every recipient of a rendered email, all but the personal parts."""

    headers: bytes  # the header block, CRLF lines, with the three personal marks
    boundary: bytes
    text: SplicedPart
    html: SplicedPart
    locale: str
    # Never serialized: a private key does not belong in the outbox.
    dkim: DkimSigner | None = field(default=None, compare=False)
    _header_pieces: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    _canonical: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pieces = _MARKS.split(self.headers)
        if pieces[1::2] != _ORDER:
            raise DeliveryError("message template: the personal header marks are missing")
        object.__setattr__(self, "_header_pieces", tuple(pieces[0::2]))
        # Checked here once: the personal fields are checked values on CRLF-ended lines
        # (continuations start with a space), the parts base64 lines, the delimiters
        # start with "--"; so only the shared header pieces and the boundary could
        # hold a lone CR or LF or a line starting with a period, and only if stored
        # bytes were tampered with. (A DKIM signature is made per message: not vouched for.)
        canonical = (
            self.dkim is None
            and all(is_canonical(piece) for piece in pieces[0::2])
            and not any(c in self.boundary for c in b"\r\n")
        )
        object.__setattr__(self, "_canonical", canonical)

    @property
    def canonical(self) -> bool:
        """Whether :meth:`personalize` gives messages in the form DATA transmits (CRLF
        line endings, none starting with a period): the SMTP transport may then send
        them as they are, marked as :class:`CanonicalMessage`."""
        return self._canonical

    @classmethod
    def build(
        cls,
        rendered: RenderedEmail,
        *,
        sender: str,
        reply_to: str | None,
        list_id: str,
        list_name: str,
        domain: str,
        date: datetime,
        dkim: DkimSigner | None = None,
    ) -> MessageTemplate:
        """Encode everything the recipients of ``rendered`` share."""
        _check_domain(domain)
        if not _LIST_ID.match(list_id):
            raise DeliveryError(f"list id {list_id!r}: expected letters, digits, '.', '_', '-'")
        if date.tzinfo is None or date.utcoffset() is None:
            raise DeliveryError(f"message date {date.isoformat()} has no time zone")
        language = rendered.locale.replace("_", "-")
        if not _LANGUAGE_TAG.match(language):
            raise DeliveryError(f"locale {rendered.locale!r} is not a BCP 47 language tag")
        text = _split(rendered.text_pieces or (rendered.text,), "text")
        html_part = _split(rendered.html_pieces or (rendered.html,), "html")
        fields = [
            # RFC 5322 §3.3: a date-time is some 31 ASCII characters, nothing to fold or
            # encode; written as the header registry would (pinned by a test) at a
            # fraction of its cost, since each planning pass has its own date.
            f"Date: {format_datetime(date)}\r\n".encode("ascii"),
            _sender_field("From", sender, what="sender"),
            *([_sender_field("Reply-To", reply_to, what="reply_to")] if reply_to else []),
            _TO,
            unstructured_field("Subject", rendered.subject),
            _MESSAGE_ID,
            # RFC 2919 §3: a phrase, then the list's identifier in angle brackets.
            _list_id_field(list_name, f"<{list_id}.{domain}>"),
            _LIST_UNSUBSCRIBE,
            fold("List-Unsubscribe-Post", ONE_CLICK_BODY),
            fold("Auto-Submitted", "auto-generated"),
            fold("Content-Language", language),
            b"MIME-Version: 1.0\r\n",
        ]
        named = [p.digest if isinstance(p, Segment) else p for h in (*text, *html_part) for p in h]
        digest = hashlib.sha256(b"\x00".join([*named, rendered.locale.encode()]))
        # "=" and "_" never occur in base64 lines, so the delimiter cannot either.
        boundary = b"=_" + digest.hexdigest()[:32].encode("ascii")
        return cls(
            headers=b"".join(fields),
            boundary=boundary,
            text=SplicedPart(*text),
            html=SplicedPart(*html_part),
            locale=rendered.locale,
            dkim=dkim,
        )

    def personalize(
        self,
        *,
        recipient: str,
        recipient_name: str | None,
        message_id: str,
        unsubscribe_url: str,
        unsubscribe_mailto: str | None,
    ) -> bytes:
        """The whole RFC 5322 message for one recipient, CRLF line endings."""
        check_address(recipient, what="recipient address")
        if not (message_id.startswith("<") and message_id.endswith(">")):
            raise DeliveryError(f"Message-ID {message_id!r}: expected <…@domain>")
        check_angle_value(message_id[1:-1], what="Message-ID")
        check_angle_value(unsubscribe_url, what="unsubscribe URL")
        if unsubscribe_mailto is not None:
            check_angle_value(unsubscribe_mailto, what="unsubscribe mailto URI")
        h0, h1, h2, h3 = self._header_pieces
        delimiter = b"--" + self.boundary
        message = b"".join(
            (
                h0,
                to_field(recipient, recipient_name),
                h1,
                b"Message-ID: " + message_id.encode("ascii") + b"\r\n",
                h2,
                list_unsubscribe_field(unsubscribe_url, unsubscribe_mailto),
                h3,
                b'Content-Type: multipart/alternative;\r\n boundary="' + self.boundary + b'"\r\n',
                b"\r\n",
                delimiter,
                b'\r\nContent-Type: text/plain; charset="utf-8"\r\n'
                b"Content-Transfer-Encoding: base64\r\n\r\n",
                self.text.encode(unsubscribe_url.encode("ascii")),
                delimiter,
                b'\r\nContent-Type: text/html; charset="utf-8"\r\n'
                b"Content-Transfer-Encoding: base64\r\n\r\n",
                self.html.encode(html.escape(unsubscribe_url).encode("ascii")),
                delimiter,
                b"--\r\n",
            )
        )
        if self.dkim is not None:
            message = self.dkim.sign(message) + message
        return message

    @property
    def segments(self) -> list[Segment]:
        """The segments the parts show, stored apart from :meth:`to_bytes`."""
        return [*self.text.segments, *self.html.segments]

    def to_bytes(self) -> bytes:
        """A compact, versioned form for the outbox's ``bodies`` table (no DKIM key, and
        segments by their digests only)."""
        values = [
            self.locale.encode("utf-8"),
            self.headers,
            self.boundary,
            _pack_pieces(self.text.prefix),
            _pack_pieces(self.text.suffix),
            _pack_pieces(self.html.prefix),
            _pack_pieces(self.html.suffix),
        ]
        # Level 1: a tenth larger than the default level 6 and 40% quicker, once per body.
        return _MAGIC + bytes([_VERSION]) + zlib.compress(_pack(values), 1)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        dkim: DkimSigner | None = None,
        segments: Mapping[bytes, bytes] | None = None,
    ) -> MessageTemplate:
        """The template :meth:`to_bytes` stored, to be signed with ``dkim`` if given;
        ``segments`` gives the bytes of the segments it names, by digest."""
        return StoredTemplate.read(data).template(segments or {}, dkim=dkim)

    @staticmethod
    def segment_digests(data: bytes) -> frozenset[bytes]:
        """The digests of the segments a stored template names, to be read from the store."""
        return StoredTemplate.read(data).digests


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    """A stored template read, the segments it names not yet put in."""

    locale: str
    headers: bytes
    boundary: bytes
    # Text, then html: before the mark, after it. Each half as a format with ``%b`` for
    # each segment it names (``%`` doubled), and the segments' digests.
    halves: tuple[tuple[bytes, tuple[bytes, ...]], ...]
    digests: frozenset[bytes]

    @classmethod
    def read(cls, data: bytes) -> StoredTemplate:
        version, values = _unpack(data)
        locale, headers, boundary, *halves = values
        try:
            language = locale.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DeliveryError(f"stored message: corrupt locale ({exc})") from exc
        read: tuple[tuple[bytes, tuple[bytes, ...]], ...]
        if version == 1:  # bytes as they are: as a format, with no segment
            read = tuple((half.replace(b"%", b"%%"), ()) for half in halves)
        else:
            read = tuple(_unpack_pieces(half) for half in halves)
        digests = frozenset(chain.from_iterable(d for _, d in read))
        return cls(language, headers, boundary, read, digests)

    def template(
        self, segments: Mapping[bytes, bytes], *, dkim: DkimSigner | None = None
    ) -> MessageTemplate:
        """The template, with the bytes of the segments it names."""
        joined: list[bytes] = []
        for form, digests in self.halves:
            try:
                joined.append(form % tuple([segments[d] for d in digests]))
            except KeyError as exc:
                raise DeliveryError(
                    f"stored message: segment {exc.args[0].hex()} is missing"
                ) from None
            except (TypeError, ValueError) as exc:
                raise DeliveryError(f"stored message: corrupt pieces ({exc})") from exc
        return MessageTemplate(
            headers=self.headers,
            boundary=self.boundary,
            text=SplicedPart((joined[0],), (joined[1],)),
            html=SplicedPart((joined[2],), (joined[3],)),
            locale=self.locale,
            dkim=dkim,
        )


def _pack(values: Sequence[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(v)) + v for v in values)


def _pack_pieces(pieces: Sequence[Piece]) -> bytes:
    """Bytes and segments in turn as: the segment count, the bytes as a format with a
    ``%b`` where each segment goes (``%`` doubled), the segments' digests. Read back,
    the format puts the segments in place in one call."""
    runs: Sequence[bytes] = pieces[0::2]  # type: ignore[assignment]
    digests = [s.digest for s in pieces[1::2]]  # type: ignore[union-attr]
    form = b"%b".join([r.replace(b"%", b"%%") for r in runs])
    return b"".join([_HALF.pack(len(digests), len(form)), form, *digests])


# A half's segment count and the length of its format.
_HALF = struct.Struct(">II")


@lru_cache(maxsize=1024)
def _digests(count: int) -> struct.Struct:
    return struct.Struct(f"{Segment.DIGEST_BYTES}s" * count)


def _unpack(data: bytes) -> tuple[int, list[bytes]]:
    """The format version and the fields of a stored template."""
    if not data.startswith(_MAGIC) or len(data) <= len(_MAGIC):
        raise DeliveryError("stored message: not a message template")
    version = data[len(_MAGIC)]
    if version not in _READS:
        raise DeliveryError(
            f"stored message: format version {version}; this publisher reads "
            + " and ".join(map(str, _READS))
        )
    try:
        payload = zlib.decompress(data[len(_MAGIC) + 1 :])
    except zlib.error as exc:
        raise DeliveryError(f"stored message: corrupt ({exc})") from exc
    values: list[bytes] = []
    offset = 0
    while offset < len(payload) and len(values) < _FIELDS:
        if offset + _LENGTH.size > len(payload):
            break
        (size,) = _LENGTH.unpack_from(payload, offset)
        offset += _LENGTH.size
        values.append(payload[offset : offset + size])
        offset += size
    if len(values) != _FIELDS or offset != len(payload):
        raise DeliveryError("stored message: corrupt (fields do not add up)")
    return version, values


def _unpack_pieces(packed: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    """The format and the segments' digests of :func:`_pack_pieces`."""
    try:
        count, size = _HALF.unpack_from(packed)
        if count > len(packed):
            raise struct.error("more segments than bytes")
        form = packed[_HALF.size : _HALF.size + size]
        digests = _digests(count).unpack_from(packed, _HALF.size + size)
    except struct.error as exc:
        raise DeliveryError(f"stored message: corrupt pieces ({exc})") from exc
    if len(form) != size or _HALF.size + size + count * Segment.DIGEST_BYTES != len(packed):
        raise DeliveryError("stored message: corrupt (a part's pieces do not add up)")
    return form, digests


def _split(pieces: Sequence[str], what: str) -> tuple[tuple[Piece, ...], tuple[Piece, ...]]:
    """The canonical pieces before and after the part's one unsubscribe URL mark, from a
    rendered part's pieces (plain texts and Shared ones in turn, plain first and last)."""
    if len(pieces) % 2 != 1:
        raise DeliveryError("rendered pieces: expected plain and shared texts in turn")
    runs = pieces[0::2]
    shared = pieces[1::2]
    # The plain texts are made canonical at once, NUL between them (never in a rendered
    # email; one by one if it is).
    joined = "\x00".join(runs)
    count = joined.count(UNSUBSCRIBE_URL_MARK)
    if count != 1:
        raise DeliveryError(
            f"the {what} part has the unsubscribe URL mark {count} times; expected once"
        )
    if joined.count("\x00") == len(runs) - 1:
        data: list[Piece] = list(canonical_text(joined).split(b"\x00"))
    else:
        data = [canonical_text(r) for r in runs]
    mark = UNSUBSCRIBE_URL_MARK.encode("ascii")
    at = next(n for n, run in enumerate(data) if mark in run)  # type: ignore[operator]
    head, _, tail = data[at].partition(mark)  # type: ignore[union-attr]
    segments = [_segment(s) for s in shared]
    turned: list[Piece] = [*data, *segments]
    turned[0::2], turned[1::2] = data, segments
    # The mark's run ends the first half and starts the second.
    return (*turned[: 2 * at], head), (tail, *turned[2 * at + 1 :])


def _segment(shared: str) -> Segment:
    """The segment of a shared piece, made once per piece (kept on it)."""
    if type(shared) is not Shared:
        raise DeliveryError("rendered pieces: a plain text where a shared one belongs")
    segment = shared.cache
    if not isinstance(segment, Segment):
        if UNSUBSCRIBE_URL_MARK in shared:
            raise DeliveryError("a shared piece holds the unsubscribe URL mark")
        segment = shared.cache = Segment(canonical_text(shared))
    return segment


@lru_cache(maxsize=64)
def _sender_field(name: str, value: str, *, what: str) -> bytes:
    """From or Reply-To: the same settings for every body, parsed and encoded once."""
    return phrase_field(name, *_mailbox(value, what=what))


@lru_cache(maxsize=64)
def _list_id_field(list_name: str, angle_id: str) -> bytes:
    return phrase_field("List-Id", list_name, angle_id)


def _mailbox(value: str, *, what: str) -> tuple[str, str]:
    """The display name and ``<address>`` of one mailbox from settings."""
    parsed = getaddresses([clean(value)])
    if len(parsed) != 1 or "@" not in parsed[0][1]:
        raise DeliveryError(f"{what} {value!r}: expected one address such as News <news@x.org>")
    name, address = parsed[0]
    return name, f"<{check_address(address, what=what)}>"


def _check_domain(domain: str) -> None:
    if not _DOMAIN.match(domain) or len(domain) > 253:
        raise DeliveryError(f"domain {domain!r}: expected a host name such as example.org")
