"""A body part's base64, encoded once and spliced per recipient around its one personal value.

Encoding a 20 KB digest to base64 costs about 120 µs in Python (the line wrapping, not
the C encoder), six times the budget of one whole message. But base64 maps every 3
input bytes to 4 output characters on their own, and RFC 2045 §6.8 lets lines be
shorter than 76 characters ("no more than 76") and has decoders ignore line breaks. So
the part is cut at the marker: the text before it is encoded once, up to a line
boundary; per recipient only a small window (the prefix's last partial line, the
value, and up to two bytes of the suffix to reach a multiple of 3) is encoded; the
suffix is encoded once for each of the three ways it can start.

Each half is a sequence of pieces: the body's own bytes, or a :class:`Segment`, bytes
many bodies show (an item's block), which the outbox stores once for all of them.
"""

from __future__ import annotations

import binascii
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain

# RFC 2045 §6.8: at most 76 characters a line, i.e. 57 input bytes.
LINE_BYTES = 57
LINE_CHARS = 76
_BLOCK_LINES = 64
_BLOCK = struct.Struct(f"{LINE_CHARS}s" * _BLOCK_LINES)


def wrap_base64(data: bytes) -> bytes:
    """``data`` in base64, lines of at most 76 characters each ending in CRLF."""
    encoded = binascii.b2a_base64(data, newline=False)
    full = len(encoded) // LINE_CHARS  # whole lines
    # The lines are cut out by struct in C, a block of them at a time, rather than by
    # one Python slice each: half the time on a 20 KB part.
    whole_blocks = full // _BLOCK_LINES * _BLOCK_LINES * LINE_CHARS
    if whole_blocks:
        blocks = _BLOCK.iter_unpack(memoryview(encoded)[:whole_blocks])
        lines = list(chain.from_iterable(blocks))
        lines.extend(_lines(full % _BLOCK_LINES).unpack_from(encoded, whole_blocks))
    else:
        lines = list(_lines(full).unpack_from(encoded))
    if len(encoded) > full * LINE_CHARS:
        lines.append(encoded[full * LINE_CHARS :])
    if not lines:
        return b""
    lines.append(b"")  # the last line's CRLF
    return b"\r\n".join(lines)


@lru_cache(maxsize=_BLOCK_LINES)
def _lines(count: int) -> struct.Struct:
    """``count`` lines of 76 characters, unpacked in one call."""
    return struct.Struct(f"{LINE_CHARS}s" * count)


def canonical_text(text: str) -> bytes:
    """UTF-8 with CRLF line breaks: the canonical form of text/* (RFC 2046 §4.1.1)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\n", "\r\n").encode("utf-8")


class Segment:
    """Bytes shared by many bodies (an item's block), stored once and named by a digest
    of them (BLAKE2b, 128 bits)."""

    __slots__ = ("data", "digest")

    DIGEST_BYTES = 16

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.digest = hashlib.blake2b(data, digest_size=self.DIGEST_BYTES).digest()

    def __repr__(self) -> str:
        return f"Segment({self.digest.hex()}, {len(self.data)} bytes)"


Piece = bytes | Segment


def piece_bytes(pieces: Sequence[Piece]) -> bytes:
    """The bytes of pieces in turn (bytes, then a segment, then bytes, …) joined."""
    if len(pieces) == 1:
        return pieces[0]  # type: ignore[return-value]
    values = list(pieces)
    values[1::2] = [p.data for p in pieces[1::2]]  # type: ignore[union-attr]
    return b"".join(values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, eq=False)
class SplicedPart:
    """The base64 of ``prefix + value + suffix`` for any value, in a few microseconds.

    Each half is bytes and segments in turn, bytes first and last (empty where two
    segments meet).
    Two parts are equal when their bytes are, however they are cut into pieces."""

    prefix: tuple[Piece, ...]
    suffix: tuple[Piece, ...]
    _head: bytes | None = field(init=False, repr=False, compare=False)
    _rest: bytes = field(init=False, repr=False, compare=False)
    _after: bytes = field(init=False, repr=False, compare=False)
    # The suffix's encoding for each number of bytes borrowed, made when first needed:
    # most bodies go to one or two recipients, whose values need one or two of them.
    _tails: list[bytes | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Joined and encoded when first needed: a part built while planning is only stored.
        object.__setattr__(self, "_head", None)
        object.__setattr__(self, "_rest", b"")
        object.__setattr__(self, "_after", b"")
        object.__setattr__(self, "_tails", [None, None, None])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SplicedPart):
            return NotImplemented
        return (piece_bytes(self.prefix), piece_bytes(self.suffix)) == (
            piece_bytes(other.prefix),
            piece_bytes(other.suffix),
        )

    def __hash__(self) -> int:
        return hash((piece_bytes(self.prefix), piece_bytes(self.suffix)))

    @property
    def segments(self) -> list[Segment]:
        return [*self.prefix[1::2], *self.suffix[1::2]]  # type: ignore[list-item]

    def encode(self, value: bytes) -> bytes:
        """The part's content lines (CRLF-terminated) with ``value`` at the marker."""
        head = self._head
        if head is None:
            prefix = piece_bytes(self.prefix)
            cut = len(prefix) - len(prefix) % LINE_BYTES
            object.__setattr__(self, "_rest", prefix[cut:])
            object.__setattr__(self, "_after", piece_bytes(self.suffix))
            head = wrap_base64(prefix[:cut])
            object.__setattr__(self, "_head", head)
        window = self._rest + value
        suffix = self._after
        # Borrow up to two bytes of the suffix so the window ends on a 3-byte group:
        # no padding inside the part, and the suffix's encoding starts afresh.
        borrow = min(-len(window) % 3, len(suffix))
        tail = self._tails[borrow]
        if tail is None:
            tail = self._tails[borrow] = wrap_base64(suffix[borrow:])
        return head + wrap_base64(window + suffix[:borrow]) + tail
