"""Unsubscribe tokens: the subscriber's address and the list id in an HMAC-signed payload.

The token is the only credential behind an unsubscribe link and the RFC 8058 one-click
POST, so it is signed (itsdangerous, HMAC-SHA256 with the ``secret_key`` and a salt that
names the purpose): it cannot be forged, altered, or guessed from another subscriber's,
and a token for one address can never act on another. It carries no sequential id.

Tokens never expire: unsubscribe links in old emails must keep working (RFC 8058 §3.1
lets the sender decide how long a URI stays valid; we choose "for ever"). To rotate the
key, sign with the new key and keep accepting the old ones (``secret_keys``).

The address is signed, not encrypted: anyone holding the link can read it, as anyone
holding the email can. The web pages send ``Referrer-Policy: no-referrer`` so it does not
leak further.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from email.utils import parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from itsdangerous import BadData, HMACAlgorithm, Serializer, Signer, URLSafeSerializer
from itsdangerous.encoding import base64_encode, want_bytes

from publisher.errors import PublisherError

# Names the purpose: a token signed for anything else with the same key is rejected.
SALT = "publisher.unsubscribe"
# The list a token belongs to unless told otherwise; one deployment is one list.
DEFAULT_LIST_ID = "news"
# Real tokens are about 100 characters; anything much longer is not worth verifying.
MAX_TOKEN_LENGTH = 1024
# What urllib.parse.quote never escapes, of what tokens are made of.
_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_.~-]*")
# RFC 8058 §3.1: the POST body the mail client sends, echoed in List-Unsubscribe-Post.
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


class UnsubscribeError(PublisherError, ValueError):
    """A token or a mailto URI cannot be made from the given values."""


def _serializer(secret_keys: Sequence[str]) -> URLSafeSerializer:
    if not secret_keys or not all(secret_keys):
        raise UnsubscribeError("unsubscribe tokens need a non-empty secret_key")
    return _serializer_for(tuple(secret_keys))


@lru_cache(maxsize=16)
def _serializer_for(secret_keys: tuple[str, ...]) -> URLSafeSerializer:
    """Built once per set of keys: a send makes one token per recipient."""
    # itsdangerous signs with the last key and verifies with any: newest last.
    return URLSafeSerializer(
        list(reversed(secret_keys)),
        salt=SALT,
        signer_kwargs={"digest_method": hashlib.sha256},
    )


class _KeyOnceSigner(Signer):
    """itsdangerous's Signer, deriving its key from the secret once instead of per token.

    The derivation (a SHA-256 of salt and secret) depends on nothing else; a worker
    signs one token per recipient with the same key.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        if (derived := self._derived.get(key)) is None:
            derived = self._derived[key] = super().derive_key(key)
        return derived


class _HmacSha256(HMACAlgorithm):
    """HMAC-SHA256 in one call to the C implementation (the same digest as hmac.new)."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, "sha256")


class _CompactJson:
    """itsdangerous's compact JSON (no spaces, non-ASCII kept) with its encoder built
    once: ``json.dumps`` with options builds a new encoder on every call."""

    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def loads(payload: str | bytes) -> Any:
        return json.loads(payload)

    @classmethod
    def dumps(cls, obj: Any) -> str:
        return cls._encoder.encode(obj)


class _PlainSerializer(URLSafeSerializer):
    """itsdangerous's URL-safe serializer, never trying zlib on the payload.

    ``URLSafeSerializer`` compresses every payload and keeps the result when it is
    shorter, which an address and a list id never are unless the address repeats
    itself (``aaaa…@example.org``). Each try sets up zlib's 256 KB of state; in a worker
    whose memory turns over with every message that cost 50-60 us a token, more than
    the rest of the token. Its payloads are those of ``URLSafeSerializer`` but never
    compressed, which ``loads`` reads all the same.
    """

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


@lru_cache(maxsize=16)
def _token_signer(secret_key: str) -> tuple[URLSafeSerializer, Signer]:
    """A serializer and its signer for making tokens with ``secret_key``, built once
    (``dumps`` builds a signer and derives its key for every token). The tokens are
    those of :func:`_serializer` (tests pin it), but for the rare payload it would
    compress (:class:`_PlainSerializer`); only the work is done once."""
    _serializer([secret_key])  # the same checks of the key
    serializer = _PlainSerializer(
        secret_key,
        salt=SALT,
        serializer=_CompactJson,
        signer=_KeyOnceSigner,
        signer_kwargs={"digest_method": hashlib.sha256, "algorithm": _HmacSha256()},
    )
    return serializer, serializer.make_signer()


def normalize_address(email: str) -> str:
    """The form an address takes in tokens and in the suppression list."""
    return email.strip().lower()


def make_token(email: str, *, secret_key: str, list_id: str = DEFAULT_LIST_ID) -> str:
    """A URL-safe token for unsubscribing ``email`` from ``list_id``."""
    address = normalize_address(email)
    if "@" not in address:
        raise UnsubscribeError(f"cannot make an unsubscribe token for {email!r}")
    serializer, signer = _token_signer(secret_key)
    # What serializer.dumps does, with the signer kept.
    return signer.sign(serializer.dump_payload([address, list_id])).decode("ascii")


def read_token(
    token: str, *, secret_keys: Sequence[str], list_id: str = DEFAULT_LIST_ID
) -> str | None:
    """The address ``token`` unsubscribes, or ``None`` when it is not a valid token.

    ``secret_keys`` is the current key first, then previous keys still accepted. Why a
    token is invalid (bad signature, bad payload, another list) is not told apart:
    callers answer every failure alike.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        payload = _serializer(secret_keys).loads(token)
    except (BadData, UnicodeError, ValueError):
        return None
    match payload:
        case [str(address), str(token_list)] if token_list == list_id and "@" in address:
            return address
        case _:
            return None


def unsubscribe_url(base_url: str, token: str) -> str:
    """The HTTPS link of the List-Unsubscribe header and of the email's footer."""
    return f"{base_url.rstrip('/')}/u/{token}"


def unsubscribe_mailto(token: str, *, sender: str, mailbox: str = "unsubscribe") -> str:
    """The mailto URI of the List-Unsubscribe header (RFC 2369), at the sender's domain.

    ``sender`` is the From address (``"News <news@example.org>"``); the subject carries
    the token, so a reply needs no other proof of who asks.
    """
    # A token is URL-safe base64 and dots, which quote() leaves as they are: only the
    # space needs escaping (checked, since any string may be passed).
    if _TOKEN_CHARACTERS.fullmatch(token):
        subject = "unsubscribe%20" + token
    else:
        subject = quote("unsubscribe " + token, safe="")
    return f"mailto:{mailbox}@{_domain(sender)}?subject={subject}"


@lru_cache(maxsize=16)
def _domain(sender: str) -> str:
    """The sender's domain, parsed once: every message of a send has the same sender."""
    _, address = parseaddr(sender)
    domain = address.rpartition("@")[2]
    if "@" not in address or not domain:
        raise UnsubscribeError(
            f"sender {sender!r} has no domain to receive unsubscribe requests; "
            "expected an address such as 'News <news@example.org>'"
        )
    return domain


def list_unsubscribe_headers(url: str, mailto: str | None = None) -> dict[str, str]:
    """``List-Unsubscribe`` (RFC 2369) and ``List-Unsubscribe-Post`` (RFC 8058 §3.1).

    The HTTPS URI comes first: RFC 8058 one-click uses the first https URI. DKIM must
    sign both headers (RFC 8058 §4).
    """
    targets = [f"<{url}>"] + ([f"<{mailto}>"] if mailto else [])
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": ONE_CLICK_BODY,
    }
