"""Messages with hostile subjects, names and links (issue "Reliability and security", part 4).

Whatever the subject, the recipient's display name and the unsubscribe URIs hold (CR,
LF, ``\\r\\nBcc: …``, controls, Unicode, thousands of characters), a personalized message
parses into exactly the header fields every message carries, none of them spanning
lines, with the subject as one cleaned line, and a multipart/alternative body of
text/plain then text/html. A URI that cannot stand between angle brackets is refused
with a DeliveryError, and only such a URI.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import re
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

from aiosmtplib.email import quote_address
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import event, example, given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from publisher.delivery import DeliveryError
from publisher.delivery._transaction import _path, data_payload, is_canonical
from publisher.delivery.message import MessageTemplate, make_message_id
from publisher.rendering import UNSUBSCRIBE_URL_MARK, RenderedEmail
from publisher.unsubscribe import SALT, make_token, normalize_address, read_token
from tests.properties.conftest import LOCALES, examples, hostile_text

DATE = datetime(2024, 12, 6, 9, 30, tzinfo=timezone(timedelta(hours=5)))
EXPECTED_FIELDS = {
    "Date", "From", "Reply-To", "To", "Subject", "Message-ID", "List-Id", "List-Unsubscribe",
    "List-Unsubscribe-Post", "Auto-Submitted", "Content-Language", "MIME-Version",
    "Content-Type",
}  # fmt: skip
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# RFC 2047 encoded-words, one of them a CR LF and a Bcc field once decoded.
ENCODED_BCC = "=?utf-8?b?" + base64.b64encode(b"\r\nBcc: x@evil.example").decode() + "?="
_ENCODED_WORDS = st.sampled_from(
    [ENCODED_BCC, "=?utf-8?b?SGk=?=", "=?utf-8?q?caf=C3=A9?=", "=?iso-8859-1?q?=0D=0AX-A:_1?="]
)


def _one_line(text: str) -> str:
    """What a subject must read as: controls and line breaks as spaces, spaces collapsed."""
    return " ".join(_CONTROLS.sub(" ", text).split())


def _read_subject(message: EmailMessage) -> str:
    """The Subject as a mail reader shows it. A value the stdlib folds onto the line after
    "Subject:" reads back from its parser with the folding space in front; readers drop it."""
    return str(message["Subject"]).lstrip(" ")


def _fits_angle_brackets(value: str) -> bool:
    """What RFC 2369 allows between < and >, and a header line can hold."""
    return (
        bool(value)
        and value.isascii()
        and not re.search(r'[\x00-\x20\x7f<>,"]', value)
        and len(value) <= 958
    )


_SUBJECTS = hostile_text() | st.builds(
    "{} {}".format, hostile_text(max_pieces=3), hostile_text(max_pieces=3)
).map(lambda text: text * 40)
_NAMES = st.none() | hostile_text()
_URI_CHARACTERS = st.characters(codec="ascii", exclude_characters='\x00<>,"')
_UNSUBSCRIBE_URLS = st.one_of(
    st.text(st.characters(codec="ascii", min_codepoint=0x21, exclude_characters='<>,"')).map(
        lambda rest: "https://news.example.org/u/" + rest
    ),
    st.text(_URI_CHARACTERS, max_size=30).map(lambda rest: "https://news.example.org/u/" + rest),
    st.sampled_from(
        [
            "https://news.example.org/u/x>\r\nBcc: x@evil.example",
            "https://news.example.org/u/a b",
            "https://news.example.org/u/" + "a" * 1000,
            "",
        ]
    ),
    hostile_text(max_pieces=3),
)
_MAILTOS = st.none() | _UNSUBSCRIBE_URLS.map(lambda url: url.replace("https://", "mailto:u@", 1))
_RECIPIENTS = st.sampled_from(["analyst@example.org", "a.b+news@sub.example.org", "x@y.example"])


def _build(subject: str, locale: str) -> MessageTemplate:
    """The template of a rendered email with ``subject``, through its stored form."""
    rendered = RenderedEmail(
        subject=subject,
        html=f'<!DOCTYPE html><p>News.</p><p><a href="{UNSUBSCRIBE_URL_MARK}">x</a></p>\n',
        text=f"News.\n\nUnsubscribe: {UNSUBSCRIBE_URL_MARK}\n",
        locale=locale,
    )
    template = MessageTemplate.build(
        rendered,
        sender="OSCE News <news@example.org>",
        reply_to="info@example.org",
        list_id="news",
        list_name="OSCE News",
        domain="example.org",
        date=DATE,
    )
    stored = MessageTemplate.from_bytes(template.to_bytes())
    assert stored == template
    return stored


def _personalize(
    template: MessageTemplate, recipient: str, name: str | None, url: str, mailto: str | None
) -> bytes | None:
    """The message's bytes; ``None`` when personalize() refused the URIs, as it must."""
    acceptable = _fits_angle_brackets(url) and (mailto is None or _fits_angle_brackets(mailto))
    try:
        data = template.personalize(
            recipient=recipient,
            recipient_name=name,
            message_id=make_message_id(key=f"digest-1/{recipient}", domain="example.org"),
            unsubscribe_url=url,
            unsubscribe_mailto=mailto,
        )
    except DeliveryError:
        assert not acceptable, f"refused {url!r}, {mailto!r}"
        event("URIs refused")
        return None
    assert acceptable, f"accepted {url!r}, {mailto!r}"
    event("message made")
    return data


def _check_fields(data: bytes) -> EmailMessage:
    """The raw header block and its parse: the expected fields, each once, on its own lines."""
    head, _, _ = data.partition(b"\r\n\r\n")
    assert head.isascii()
    assert b"\r" not in head.replace(b"\r\n", b"") and b"\n" not in head.replace(b"\r\n", b"")
    for line in head.split(b"\r\n"):
        if not line[:1].isspace():  # not a folded continuation
            assert line.split(b":", 1)[0].decode() in EXPECTED_FIELDS, line
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert sorted(message.keys()) == sorted(EXPECTED_FIELDS)
    for name, value in message.items():
        assert "\r" not in value and "\n" not in value, (name, value)
    return message


@examples(200)
@given(
    subject=_SUBJECTS,
    locale=st.sampled_from(LOCALES),
    recipient=_RECIPIENTS,
    name=_NAMES,
    url=_UNSUBSCRIBE_URLS,
    mailto=_MAILTOS,
)
def test_no_subject_name_or_link_adds_a_header_or_breaks_the_message(
    subject: str, locale: str, recipient: str, name: str | None, url: str, mailto: str | None
) -> None:
    """Any subject, name and URIs: exactly the expected fields, one-line values, two parts;
    CRLF lines only, none starting with a period (sent as is by the SMTP transport)."""
    template = _build(subject, locale)
    data = _personalize(template, recipient, name, url, mailto)
    if data is None:
        return
    # What the SMTP transport sends with no pass over it must be in DATA's form already.
    assert template.canonical
    assert is_canonical(data) and data.endswith(b"\r\n")
    message = _check_fields(data)
    # The same words in the same order; the spacing is pinned by the xfail test below.
    assert " ".join(_read_subject(message).split()) == _one_line(subject)
    [to] = message["To"].addresses
    assert to.addr_spec == recipient
    expected_uris = f"<{url}>" if mailto is None else f"<{url}>, <{mailto}>"
    assert message["List-Unsubscribe"] == expected_uris
    assert message.get_content_type() == "multipart/alternative"
    assert message.defects == []
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert all(part.defects == [] for part in parts)
    assert url in parts[0].get_content()


@examples(30)
@example(before="Hello ", word=ENCODED_BCC, after="")
@example(before="", word="=?utf-8?b?SGk=?=", after="")
@given(before=hostile_text(max_pieces=2), word=_ENCODED_WORDS, after=hostile_text(max_pieces=2))
def test_a_subject_that_looks_encoded_stays_as_written(before: str, word: str, after: str) -> None:
    """A subject holding "=?utf-8?b?…?=" text adds no header and reads back as written."""
    subject = before + word + after
    template = _build(subject, "en")
    data = _personalize(template, "analyst@example.org", None, "https://news.example.org/u/t", None)
    assert data is not None
    message = _check_fields(data)
    assert _read_subject(message) == _one_line(subject)


@examples(60)
@example(subject="a" * 58 + " " + "b" * 80)
@given(subject=_SUBJECTS)
def test_a_subject_reads_back_exactly_as_cleaned(subject: str) -> None:
    """Any subject reads back as its one-line cleaned text, spacing included."""
    data = _personalize(
        _build(subject, "en"), "analyst@example.org", None, "https://news.example.org/u/t", None
    )
    assert data is not None
    assert _read_subject(_check_fields(data)) == _one_line(subject)


_WIRE_PIECES = st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b"\xff", b" "])
_RAW_MESSAGES = st.binary(max_size=300) | st.lists(_WIRE_PIECES, max_size=60).map(b"".join)


@examples(300)
@example(message=b"")
@example(message=b".\r\n")
@example(message=b"a\r")
@given(message=_RAW_MESSAGES)
def test_the_data_sent_is_what_sendmail_sends(message: bytes) -> None:
    """Any bytes: what DATA transmits, and the SIZE, equal aiosmtplib's own passes."""
    normalized = normalize_message_line_endings(message)
    assert data_payload(message) == (
        PERIOD_REGEX.sub(b"..", normalized) + b".\r\n",
        len(normalized),
    )


_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_ADDRESSES = st.one_of(
    st.from_regex(rf"[{_ATEXT}]+(\.[{_ATEXT}]+)*@[a-z0-9-]+(\.[a-z0-9-]+)*", fullmatch=True),
    st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=40),
)


@examples(300)
@given(address=_ADDRESSES)
def test_envelope_addresses_are_quoted_as_aiosmtplib_quotes_them(address: str) -> None:
    """The envelope's <address> is aiosmtplib's quote_address, or refused when it is."""
    try:
        expected: bytes | None = quote_address(address).encode("ascii")
    except ValueError:
        expected = None
    try:
        got: bytes | None = _path(address, "ascii")
    except ValueError:
        got = None
    assert got == expected


@examples(100)
@given(
    address=st.emails() | _ADDRESSES.filter(lambda a: "@" in a),
    key=st.text(min_size=1, max_size=40),
)
def test_unsubscribe_tokens_are_itsdangerous_tokens(address: str, key: str) -> None:
    """make_token, with its key derived once, gives exactly itsdangerous's dumps, but
    for a payload dumps would compress, which it leaves plain: itsdangerous reads both."""
    serializer = URLSafeSerializer(
        [key], salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )
    payload = [normalize_address(address), "news"]
    token = make_token(address, secret_key=key, list_id="news")
    theirs = serializer.dumps(payload)
    if theirs.startswith("."):  # compressed
        assert not token.startswith(".")
    else:
        assert token == theirs
    assert serializer.loads(token) == payload
    assert read_token(token, secret_keys=[key], list_id="news") == normalize_address(address)


def test_an_unsubscribe_token_is_never_compressed() -> None:
    address = "a" * 200 + "@example.org"
    token = make_token(address, secret_key="k", list_id="news")
    assert not token.startswith(".")
    assert read_token(token, secret_keys=["k"], list_id="news") == address
