"""A body part's base64, encoded once and spliced per recipient around its one personal value.

Encoding a 20 KB digest to base64 costs about 120 µs in Python (the line wrapping, not
the C encoder), six times the budget of one whole message. But base64 maps every 3
input bytes to 4 output characters on their own, and RFC 2045 §6.8 lets lines be
shorter than 76 characters ("no more than 76") and has decoders ignore line breaks. So
the part is cut at the marker: the text before it is encoded once, up to a line
boundary; per recipient only a small window (the prefix's last partial line, the
value, and up to two bytes of the suffix to reach a multiple of 3) is encoded; the
suffix is encoded once for each of the three ways it can start.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field

# RFC 2045 §6.8: at most 76 characters a line, i.e. 57 input bytes.
LINE_BYTES = 57
LINE_CHARS = 76


def wrap_base64(data: bytes) -> bytes:
    """``data`` in base64, lines of at most 76 characters each ending in CRLF."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"".join(
        encoded[i : i + LINE_CHARS] + b"\r\n" for i in range(0, len(encoded), LINE_CHARS)
    )


def canonical_text(text: str) -> bytes:
    """UTF-8 with CRLF line breaks: the canonical form of text/* (RFC 2046 §4.1.1)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class SplicedPart:
    """The base64 of ``prefix + value + suffix`` for any value, in a few microseconds."""

    prefix: bytes
    suffix: bytes
    _head: bytes = field(init=False, repr=False, compare=False)
    _rest: bytes = field(init=False, repr=False, compare=False)
    _tails: tuple[bytes, bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cut = len(self.prefix) - len(self.prefix) % LINE_BYTES
        object.__setattr__(self, "_head", wrap_base64(self.prefix[:cut]))
        object.__setattr__(self, "_rest", self.prefix[cut:])
        tails = tuple(wrap_base64(self.suffix[j:]) for j in range(3))
        object.__setattr__(self, "_tails", tails)

    def encode(self, value: bytes) -> bytes:
        """The part's content lines (CRLF-terminated) with ``value`` at the marker."""
        window = self._rest + value
        # Borrow up to two bytes of the suffix so the window ends on a 3-byte group:
        # no padding inside the part, and the suffix's encoding starts afresh.
        borrow = min(-len(window) % 3, len(self.suffix))
        return self._head + wrap_base64(window + self.suffix[:borrow]) + self._tails[borrow]
