"""Unsubscribe tokens: signed, unforgeable, bound to one address and one list."""

from __future__ import annotations

import base64
import json

import pytest

from publisher.unsubscribe import (
    UnsubscribeError,
    list_unsubscribe_headers,
    make_token,
    read_token,
    unsubscribe_mailto,
    unsubscribe_url,
)

KEY = "a-long-random-secret"


def test_a_token_round_trips_to_the_lower_cased_address() -> None:
    """read_token gives back the address make_token was given, lower-cased."""
    token = make_token("Analyst@Example.ORG", secret_key=KEY)
    assert read_token(token, secret_keys=[KEY]) == "analyst@example.org"


def test_an_altered_token_is_rejected() -> None:
    """Changing any one character of a token makes it invalid."""
    token = make_token("a@example.org", secret_key=KEY)
    for position in range(len(token)):
        replacement = "A" if token[position] != "A" else "B"
        altered = token[:position] + replacement + token[position + 1 :]
        assert read_token(altered, secret_keys=[KEY]) is None, position


def test_a_token_signed_with_another_secret_is_rejected() -> None:
    """A token made with another key, or for another list, does not verify."""
    token = make_token("a@example.org", secret_key="someone-elses-key")
    assert read_token(token, secret_keys=[KEY]) is None
    other_list = make_token("a@example.org", secret_key=KEY, list_id="other")
    assert read_token(other_list, secret_keys=[KEY]) is None


def test_a_token_signed_with_a_previous_key_is_accepted_after_rotation() -> None:
    """After rotating the key, old links keep working; new tokens use the new key."""
    old = make_token("a@example.org", secret_key="old-key")
    assert read_token(old, secret_keys=["new-key", "old-key"]) == "a@example.org"
    assert read_token(old, secret_keys=["new-key"]) is None
    new = make_token("a@example.org", secret_key="new-key")
    assert read_token(new, secret_keys=["new-key", "old-key"]) == "a@example.org"


def test_tokens_of_two_addresses_differ_and_cannot_be_swapped() -> None:
    """Putting one address's payload with another's signature gives an invalid token."""
    first = make_token("a@example.org", secret_key=KEY)
    second = make_token("b@example.org", secret_key=KEY)
    assert first != second
    payload_a, signature_a = first.rsplit(".", 1)
    payload_b, signature_b = second.rsplit(".", 1)
    assert read_token(f"{payload_a}.{signature_b}", secret_keys=[KEY]) is None
    assert read_token(f"{payload_b}.{signature_a}", secret_keys=[KEY]) is None


def test_a_forged_payload_without_the_key_is_rejected() -> None:
    """An attacker who knows the format but not the key cannot make a working token."""
    token = make_token("a@example.org", secret_key=KEY)
    signature = token.rsplit(".", 1)[1]
    forged = base64.urlsafe_b64encode(json.dumps(["victim@example.org", "news"]).encode())
    assert read_token(f"{forged.decode().rstrip('=')}.{signature}", secret_keys=[KEY]) is None


@pytest.mark.parametrize(
    "token", ["", ".", "x" * 5000, "é", "\x00", "a.b.c", "W10.abc", "unsubscribe me"]
)
def test_malformed_tokens_are_rejected_quietly(token: str) -> None:
    """Empty, huge, non-ASCII and nonsense tokens give None, never an exception."""
    assert read_token(token, secret_keys=[KEY]) is None


def test_an_empty_key_or_an_address_without_at_is_refused() -> None:
    """Signing with an empty key, or for something not an address, is an error."""
    with pytest.raises(UnsubscribeError):
        make_token("a@example.org", secret_key="")
    with pytest.raises(UnsubscribeError):
        make_token("not an address", secret_key=KEY)


def test_urls_mailto_and_headers() -> None:
    """The link, the mailto URI at the sender's domain, and the RFC 8058 header pair."""
    token = make_token("a@example.org", secret_key=KEY)
    url = unsubscribe_url("https://news.example.org/", token)
    assert url == f"https://news.example.org/u/{token}"
    mailto = unsubscribe_mailto(token, sender="News <news@example.org>")
    assert mailto == f"mailto:unsubscribe@example.org?subject=unsubscribe%20{token}"
    assert list_unsubscribe_headers(url, mailto) == {
        "List-Unsubscribe": f"<{url}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    with pytest.raises(UnsubscribeError, match="no domain"):
        unsubscribe_mailto(token, sender="News")
