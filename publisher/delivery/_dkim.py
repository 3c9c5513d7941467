"""DKIM signatures (RFC 6376) with dkimpy, applied to each personalized message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from publisher.delivery._result import DeliveryError
from publisher.settings import DkimSettings

# RFC 8058 §4: the signature must cover both List-Unsubscribe fields, or a forwarder
# could swap the one-click target. Names listed twice that the message has once are
# "oversigned" (RFC 6376 §8.15): adding a second From or Subject breaks the signature.
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
    "Content-Language",
    "From",
    "Subject",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)


def _dkim() -> Any:
    try:
        import dkim  # type: ignore[import-untyped]
    except ImportError as exc:
        raise DeliveryError(
            "DKIM signing needs the dkimpy package: pip install 'dkimpy>=1.1.8,<2'"
        ) from exc
    return dkim


@dataclass(frozen=True, slots=True)
class DkimSigner:
    """Signs as ``selector._domainkey.domain``; the key is never stored with a message."""

    selector: str
    domain: str
    private_key_pem: bytes = field(repr=False)

    def __post_init__(self) -> None:
        dkim = _dkim()
        try:
            dkim.crypto.parse_pem_private_key(self.private_key_pem)
        except (dkim.crypto.UnparsableKeyError, ValueError) as exc:
            raise DeliveryError(
                f"DKIM key for {self.selector}._domainkey.{self.domain} is not a PEM "
                f"RSA private key: {exc}"
            ) from exc

    def sign(self, message: bytes) -> bytes:
        """The ``DKIM-Signature`` field (CRLF-terminated) to put before ``message``."""
        dkim = _dkim()
        try:
            signature: bytes = dkim.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.private_key_pem,
                # relaxed/relaxed survives the re-folding and whitespace changes of
                # relays (RFC 6376 §3.4); simple body breaks on a trailing-space strip.
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[h.lower().encode("ascii") for h in SIGNED_HEADERS],
            )
        except dkim.DKIMException as exc:
            raise DeliveryError(f"DKIM signing as {self.domain} failed: {exc}") from exc
        return signature


def signer_from_settings(settings: DkimSettings) -> DkimSigner | None:
    """The signer the ``[dkim]`` settings describe, or ``None`` when signing is off."""
    if settings.key_file is None or settings.selector is None or settings.domain is None:
        return None
    try:
        key = settings.key_file.read_bytes()
    except OSError as exc:
        raise DeliveryError(f"dkim.key_file: cannot read {settings.key_file}: {exc}") from exc
    return DkimSigner(selector=settings.selector, domain=settings.domain, private_key_pem=key)
