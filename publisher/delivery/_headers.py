"""Header fields: shared ones folded by the stdlib once, personal ones written per recipient.

Nothing a subscriber, an editor or a source wrote may add a header field. Every value
is cleaned before it reaches a header (control characters, CR and LF, Unicode line
separators become spaces), and the values that are copied verbatim (addresses, the
Message-ID, the unsubscribe URIs) are checked instead and refused when they could end
a field or an angle-bracketed part.
"""

from __future__ import annotations

import binascii
import re
from email import policy
from email.utils import quote
from functools import lru_cache

from publisher.delivery._result import DeliveryError

# RFC 5322 §2.1.1: lines SHOULD be at most 78 characters and MUST be at most 998.
MAX_LINE = 78
MAX_LINE_HARD = 998
# SMTP folds at 78 and ends lines in CRLF; utf8=False encodes non-ASCII (RFC 2047).
_POLICY = policy.SMTP

# C0 and C1 controls, DEL, and Unicode's own line and paragraph separators.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# What may stand inside <...> or as an address: no whitespace, controls, brackets, commas.
_UNSAFE_IN_ANGLES = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029<>,\"]")
# RFC 5322 §3.2.3: a display name with any of these must be a quoted-string.
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
# RFC 2047 §2: an encoded-word is at most 75 characters; "=?utf-8?b?" + "?=" is 12,
# and 45 bytes make 60 base64 characters.
_WORD_BYTES = 45


def clean(value: str) -> str:
    """``value`` on one line: every run of controls or whitespace becomes one space."""
    return " ".join(_CONTROLS.sub(" ", value).split())


@lru_cache(maxsize=1024)
def fold(name: str, value: str) -> bytes:
    """One header field, encoded and folded by the stdlib's header registry.

    Cached: the fields it folds (Date, List-Unsubscribe-Post, Auto-Submitted,
    Content-Language) repeat from one body to the next, and the registry's parser
    costs more than all the rest of a template."""
    # header_factory(...).fold always encodes; policy.fold_binary leaves a short
    # non-ASCII value unencoded and then fails to make bytes of it.
    folded: str = _POLICY.header_factory(name, value).fold(policy=_POLICY)
    return folded.encode("ascii")


def check_address(address: str, *, what: str) -> str:
    """``address`` as it may stand in a header and on an SMTP command line."""
    if any(c in address for c in "\r\n\0"):
        raise DeliveryError(f"{what} {address!r} contains CR, LF or NUL; refusing to send")
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or _UNSAFE_IN_ANGLES.search(address):
        raise DeliveryError(f"{what} {address!r} is not an address such as news@example.org")
    return address


def check_angle_value(value: str, *, what: str) -> str:
    """A Message-ID or URI copied verbatim between angle brackets."""
    if not value or _UNSAFE_IN_ANGLES.search(value) or not value.isascii():
        raise DeliveryError(
            f"{what} {value!r} cannot go in a header: expected printable ASCII "
            "with no spaces, angle brackets, quotes or commas"
        )
    if len(value) > MAX_LINE_HARD - 40:
        raise DeliveryError(f"{what} is {len(value)} characters long; at most 950 fit a header")
    return value


def encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 "B" encoded-words of at most 75 characters.

    Spaces stay inside the encoded text: RFC 2047 §6.2 has decoders drop the folding
    whitespace between two encoded-words. (The stdlib's folder puts a space there, so
    "доказательства: семинар" comes out as "доказательства:семинар".) Words are cut
    after a space when one is near, and never inside a character.
    """
    chunks: list[bytes] = []
    chunk = b""
    for token in re.findall(r"\S+\s*|\s+", text):
        data = token.encode("utf-8")
        if chunk and len(chunk) + len(data) > _WORD_BYTES:
            chunks.append(chunk)
            chunk = b""
        if len(data) <= _WORD_BYTES:
            chunk += data
            continue
        for char in token:  # a word longer than an encoded-word holds
            piece = char.encode("utf-8")
            if len(chunk) + len(piece) > _WORD_BYTES:
                chunks.append(chunk)
                chunk = b""
            chunk += piece
    chunks.append(chunk)
    return [
        "=?utf-8?b?" + binascii.b2a_base64(c, newline=False).decode("ascii") + "?=" for c in chunks
    ]


def _fold_words(name: str, words: list[str]) -> bytes:
    """``name: word word …``, a new line (folding whitespace) wherever 78 would be passed."""
    line, lines = f"{name}:", []
    for word in words:
        if len(line) + 1 + len(word) > MAX_LINE and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def unstructured_field(name: str, value: str) -> bytes:
    """An unstructured field such as Subject, cleaned, encoded when not ASCII, folded.

    Untrusted text never goes through the stdlib's header parser: it decodes RFC 2047
    encoded-words it finds in the value, so a title holding ``=?utf-8?b?DQpCY2M6…?=``
    would come out as a CRLF and a Bcc field. Plain ASCII words are folded as they are;
    anything else (non-ASCII, ``=?``, a word too long for a line) is encoded.
    """
    text = clean(value)
    words = text.split(" ") if text else []
    room = MAX_LINE - len(name) - 2
    if text.isascii() and "=?" not in text and all(len(word) <= room for word in words):
        return _fold_words(name, words)
    return _fold_words(name, encoded_words(text))


def phrase_field(name: str, display: str | None, angle_addr: str) -> bytes:
    """``name: display-name <…>`` (To, From, Reply-To, List-Id), the name encoded if need be.

    A phrase split into several encoded-words decodes exactly in RFC 2047 readers; the
    stdlib's parser keeps a space between them, so the split is made after a space,
    where an extra one does least harm.
    """
    text = clean(display or "")
    if not text:
        return _fold_words(name, [angle_addr])
    if text.isascii():
        # As email.utils.formataddr does, which refuses non-ASCII addresses (RFC 6532).
        phrase = f'"{quote(text)}"' if _SPECIALS.search(text) else text
        if len(name) + 2 + len(phrase) + 1 + len(angle_addr) <= MAX_LINE:
            return f"{name}: {phrase} {angle_addr}\r\n".encode()
    return _fold_words(name, [*encoded_words(text), angle_addr])


def to_field(address: str, name: str | None) -> bytes:
    """``To:`` for one recipient, the display name encoded when it is not plain ASCII."""
    if not clean(name or ""):
        return f"To: {address}\r\n".encode()
    return phrase_field("To", name, f"<{address}>")


def list_unsubscribe_field(url: str, mailto: str | None) -> bytes:
    """RFC 2369 ``List-Unsubscribe``: the HTTPS URI first (RFC 8058 §3.1), then mailto.

    Folded between the URIs, never inside one: RFC 2369 §2 asks clients to ignore
    whitespace inside the angle brackets, but not all of them do.
    """
    if mailto is None:
        return _fold_words("List-Unsubscribe", [f"<{url}>"])
    return _fold_words("List-Unsubscribe", [f"<{url}>,", f"<{mailto}>"])
