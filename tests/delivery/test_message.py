"""MessageTemplate: the MIME message built once and personalized per recipient as bytes."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import re
import struct
import zlib
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest

from publisher.delivery import DeliveryError
from publisher.delivery._headers import fold
from publisher.delivery._parts import Piece, Segment, SplicedPart, canonical_text
from publisher.delivery.message import DkimSigner, MessageTemplate, make_message_id
from publisher.rendering import UNSUBSCRIBE_URL_MARK as MARK
from publisher.rendering import EmailRenderer, RenderedEmail
from publisher.rendering.emails import Shared
from publisher.taxonomy import load_taxonomy
from publisher.unsubscribe import make_token, unsubscribe_mailto, unsubscribe_url
from tests.rendering.conftest import make_item, make_rule, translation

DATE = datetime(2024, 12, 6, 9, 30, tzinfo=timezone(timedelta(hours=5)))
SENDER = "Новости ОБСЕ <news@example.org>"
SUBJECT = "Киберпреступность и электронные доказательства: семинар для следователей в Ташкенте"
TEXT = (
    "Тридцать следователей и прокуроров из Центральной Азии отработали сбор и обмен "
    "электронными доказательствами.\n\n"
    f"Отписаться: {MARK}\n"
)
HTML = (
    '<!doctype html><html lang="ru"><body><p>Тридцать следователей и прокуроров.</p>'
    f'<p><a href="{MARK}">Отписаться</a></p></body></html>\n'
)


def rendered(subject: str = SUBJECT, text: str = TEXT, html: str = HTML) -> RenderedEmail:
    return RenderedEmail(subject=subject, html=html, text=text, locale="ru")


def build(email_: RenderedEmail | None = None, **changes: object) -> MessageTemplate:
    arguments: dict[str, object] = {
        "sender": SENDER,
        "reply_to": "info@example.org",
        "list_id": "news",
        "list_name": "OSCE News",
        "domain": "example.org",
        "date": DATE,
        **changes,
    }
    return MessageTemplate.build(email_ or rendered(), **arguments)  # type: ignore[arg-type]


def url_for(address: str) -> str:
    return unsubscribe_url("https://news.example.org", make_token(address, secret_key="k"))


def mailto_for(address: str) -> str:
    return unsubscribe_mailto(make_token(address, secret_key="k"), sender=SENDER)


def personalize(
    template: MessageTemplate, address: str = "analyst@example.org", name: str | None = None
) -> bytes:
    return template.personalize(
        recipient=address,
        recipient_name=name,
        message_id=make_message_id(key=f"digest-1/{address}", domain="example.org"),
        unsubscribe_url=url_for(address),
        unsubscribe_mailto=mailto_for(address),
    )


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_names(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    return [line.split(":", 1)[0] for line in head.split("\r\n") if not line[:1].isspace()]


def test_every_header_is_present_and_right() -> None:
    """A personalized message carries every header DESIGN.md lists, parsed back exactly."""
    data = personalize(build(), name="Анна Иванова")
    message = parse(data)
    assert message["Date"].datetime == DATE
    assert message["From"].addresses[0].display_name == "Новости ОБСЕ"
    assert message["From"].addresses[0].addr_spec == "news@example.org"
    assert message["Reply-To"].addresses[0].addr_spec == "info@example.org"
    assert message["To"].addresses[0].display_name == "Анна Иванова"
    assert message["To"].addresses[0].addr_spec == "analyst@example.org"
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"] == make_message_id(
        key="digest-1/analyst@example.org", domain="example.org"
    )
    assert message["MIME-Version"] == "1.0"
    assert message["List-Id"] == "OSCE News <news.example.org>"
    assert message["List-Unsubscribe"] == (
        f"<{url_for('analyst@example.org')}>, <{mailto_for('analyst@example.org')}>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "ru"
    assert message.get_content_type() == "multipart/alternative"
    assert message.defects == []
    # Raw: non-ASCII is RFC 2047 encoded, each header once.
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    names = header_names(data)
    assert len(names) == len(set(names))


def test_parts_are_text_then_html_with_the_url_substituted() -> None:
    """Both parts are UTF-8 base64, Russian intact, the recipient's URL in place of the mark."""
    message = parse(personalize(build()))
    text, html = list(message.iter_parts())
    url = url_for("analyst@example.org")
    for part, subtype in ((text, "plain"), (html, "html")):
        assert part.get_content_type() == f"text/{subtype}"
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "base64"
        assert part.defects == []
    text_content, html_content = text.get_content(), html.get_content()
    assert text_content == TEXT.replace(MARK, url).replace("\n", "\r\n")
    assert html_content == HTML.replace(MARK, url).replace("\n", "\r\n")
    assert "Тридцать следователей" in text_content
    assert MARK not in text_content
    assert MARK not in html_content


def test_html_part_gets_the_url_escaped() -> None:
    """An "&" in the unsubscribe URL is escaped in HTML and left as it is in the text."""
    data = build().personalize(
        recipient="a@example.org",
        recipient_name=None,
        message_id="<x@example.org>",
        unsubscribe_url="https://news.example.org/u/a?b=1&c=2",
        unsubscribe_mailto=None,
    )
    text, html = list(parse(data).iter_parts())
    assert "https://news.example.org/u/a?b=1&c=2" in text.get_content()
    assert 'href="https://news.example.org/u/a?b=1&amp;c=2"' in html.get_content()
    assert parse(data)["List-Unsubscribe"] == "<https://news.example.org/u/a?b=1&c=2>"


def test_lines_end_in_crlf_and_stay_short() -> None:
    """Every line ends in CRLF; headers ≤ 78 octets, base64 ≤ 76, nothing over 998."""
    long_name = "Анна Иванова-Петрова, старший аналитик отдела по кибербезопасности " * 2
    data = personalize(build(), name=long_name)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    head, body = data.split(b"\r\n\r\n", 1)
    # The URIs of List-Unsubscribe are never folded inside; every other header line fits 78.
    assert all(
        len(line) <= 78
        for line in head.split(b"\r\n")
        if b"<https://" not in line and b"<mailto:" not in line
    )
    for line in body.split(b"\r\n"):
        if re.fullmatch(rb"[A-Za-z0-9+/=]+", line):
            assert len(line) <= 76
    for word in re.findall(rb"=\?utf-8\?b\?[^?]*\?=", head):
        assert len(word) <= 75


def test_long_names_and_subjects_decode_intact() -> None:
    """Long non-ASCII subjects decode exactly; long display names keep every word."""
    subject = "Очень длинная тема: " + "электронные доказательства и семинары " * 6
    long_name = "Анна Иванова-Петрова, старший аналитик отдела по кибербезопасности"
    message = parse(personalize(build(rendered(subject=subject)), name=long_name))
    assert message["Subject"] == " ".join(subject.split())
    # RFC 2047 §6.2 readers drop the folding between encoded-words; the stdlib's address
    # parser keeps it as a space, and the words are split after a space, so at worst a
    # second space appears, never a space inside a word.
    assert " ".join(message["To"].addresses[0].display_name.split()) == long_name


def test_ascii_names_are_quoted_when_they_need_it() -> None:
    """An ASCII display name with specials becomes a quoted-string."""
    message = parse(personalize(build(), name='Smith, "Agent" J.'))
    assert message["To"].addresses[0].display_name == 'Smith, "Agent" J.'
    assert message["To"].addresses[0].addr_spec == "analyst@example.org"
    assert parse(personalize(build()))["To"] == "analyst@example.org"


def test_round_trip_through_bytes() -> None:
    """from_bytes(to_bytes()) gives an equal template that personalizes to the same bytes."""
    template = build()
    stored = template.to_bytes()
    assert stored.startswith(b"publisher-message\x02")
    again = MessageTemplate.from_bytes(stored)
    assert again == template
    assert personalize(again, name="Анна") == personalize(template, name="Анна")
    # Compact: smaller than one personalized message.
    assert len(stored) < len(personalize(template))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"nonsense",
        b"publisher-message\x03xx",
        b"publisher-message\x01not zlib",
        b"publisher-message\x02" + zlib.compress(b"\x00\x00\x00\x01x"),
    ],
)
def test_from_bytes_rejects_what_it_did_not_write(data: bytes) -> None:
    """A foreign, corrupt or future-version body raises DeliveryError."""
    with pytest.raises(DeliveryError, match="stored message"):
        MessageTemplate.from_bytes(data)


def test_two_recipients_share_everything_but_their_own_parts() -> None:
    """Two recipients differ in To, Message-ID and unsubscribe URIs, and nothing else."""
    template = build()
    first = parse(personalize(template, "one@example.org", "One"))
    second = parse(personalize(template, "two@example.org", "Two"))
    for name in ("To", "Message-ID", "List-Unsubscribe"):
        assert first[name] != second[name]
    for name in ("Date", "From", "Reply-To", "Subject", "List-Id", "Content-Language"):
        assert first[name] == second[name]
    first_parts = [p.get_content() for p in first.iter_parts()]
    second_parts = [p.get_content() for p in second.iter_parts()]
    assert url_for("one@example.org") in first_parts[0]
    assert url_for("two@example.org") in second_parts[0]
    assert [p.replace(url_for("one@example.org"), MARK) for p in first_parts] == [
        p.replace(url_for("two@example.org"), MARK) for p in second_parts
    ]


@pytest.mark.parametrize("prefix_length", [0, 1, 2, 56, 57, 58, 113, 114, 200])
def test_spliced_base64_matches_a_plain_encoding(prefix_length: int) -> None:
    """The spliced base64 decodes to exactly prefix + value + suffix for any alignment."""
    prefix = ("ж" * 200).encode()[:prefix_length]
    for suffix in (b"", b"a", b"ab", "хвост, довольно длинный".encode() * 9):
        part = SplicedPart((prefix,), (suffix,))
        for value_length in range(70):
            value = b"v" * value_length
            _assert_base64_of(part.encode(value), prefix + value + suffix)


def _assert_base64_of(encoded: bytes, data: bytes) -> None:
    """``encoded`` is ``data`` in base64 lines of whole 4-character groups, at most 76
    characters, CRLF-ended, padded only at the very end."""
    lines = encoded.split(b"\r\n")
    assert lines[-1] == b""
    assert all(0 < len(line) <= 76 and len(line) % 4 == 0 for line in lines[:-1])
    assert b"=" not in encoded.rstrip(b"=\r\n")
    assert base64.b64decode(b"".join(lines)) == data


def _some_pieces(seed: int) -> list[bytes | Segment]:
    """Literal and segment pieces of lengths around the 3-byte groups and 57-byte lines."""
    lengths = [0, 1, 2, 3, 4, 5, 56, 57, 58, 100, 301]
    pieces: list[bytes | Segment] = []
    for n in range(seed % 5):
        data = ("ж" * 200).encode()[: lengths[(seed * 7 + n * 3) % len(lengths)]]
        pieces.append(Segment(data) if (seed + n) % 2 else data)
    return pieces


def in_turn(pieces: list[bytes | Segment]) -> tuple[Piece, ...]:
    """Pieces as a SplicedPart holds them: bytes and segments in turn, bytes first and
    last (empty where two segments meet)."""
    turned: list[Piece] = []
    pending: list[bytes] = []
    for piece in pieces:
        if isinstance(piece, Segment):
            turned += [b"".join(pending), piece]
            pending = []
        else:
            pending.append(piece)
    turned.append(b"".join(pending))
    return tuple(turned)


@pytest.mark.parametrize("seed", range(60))
def test_parts_made_of_segments_encode_to_their_bytes(seed: int) -> None:
    """Pieces of every length, literal or segment, around a value of every length: the
    base64 decodes to the bytes joined, lines of whole 4-character groups, padding only
    at the end."""
    prefix, suffix = _some_pieces(seed), _some_pieces(seed * 11 + 3)
    part = SplicedPart(in_turn(prefix), in_turn(suffix))

    def raw(pieces: list[bytes | Segment]) -> bytes:
        return b"".join(p.data if isinstance(p, Segment) else p for p in pieces)

    for value_length in range(8):
        value = b"v" * value_length
        _assert_base64_of(part.encode(value), raw(prefix) + value + raw(suffix))


def _assembled(shared: Shared) -> RenderedEmail:
    """TEXT and HTML with a shared piece in each, as the renderer assembles a digest."""
    text_head, _, text_tail = TEXT.partition("\n\n")
    html_head, _, html_tail = HTML.partition("<p><a")
    html_tail = "<p><a" + html_tail
    return RenderedEmail(
        subject=SUBJECT,
        html=html_head + shared + html_tail,
        text=text_head + shared + text_tail,
        locale="ru",
        html_pieces=(html_head, shared, html_tail),
        text_pieces=(text_head, shared, text_tail),
    )


def test_a_shared_piece_is_stored_apart_and_read_back_by_its_digest() -> None:
    """An assembled email's shared pieces become segments: the stored form names them
    by digest, and with them it personalizes to what the same email built from its
    joined text does, down to the decoded parts."""
    shared = Shared("<p>Семинар в Ташкенте.</p>\n" * 20)
    email_ = _assembled(shared)
    template = build(email_)
    assert [s.data for s in template.segments] == [canonical_text(shared)] * 2
    assert template.segments[0] is template.segments[1]  # made once per piece
    stored = template.to_bytes()
    assert canonical_text(shared) not in zlib.decompress(stored[18:])
    digests = MessageTemplate.segment_digests(stored)
    assert digests == {s.digest for s in template.segments}
    (digest,) = digests
    with pytest.raises(DeliveryError, match=f"segment {digest.hex()} is missing"):
        MessageTemplate.from_bytes(stored)
    again = MessageTemplate.from_bytes(stored, segments={digest: template.segments[0].data})
    assert again == template
    plain = build(dataclasses.replace(email_, html_pieces=None, text_pieces=None))
    ours, theirs = parse(personalize(again)), parse(personalize(plain))
    assert [p.get_content() for p in ours.iter_parts()] == [
        p.get_content() for p in theirs.iter_parts()
    ]
    assert ours["Subject"] == theirs["Subject"]


def test_a_body_stored_in_the_first_format_is_still_read() -> None:
    """Rows queued before segments existed (format 1: each half of a part as bytes) are
    sent as they were."""
    template = build()
    fields = [
        b"ru",
        template.headers,
        template.boundary,
        *(
            b"".join(p for p in half if isinstance(p, bytes))
            for half in (
                template.text.prefix,
                template.text.suffix,
                template.html.prefix,
                template.html.suffix,
            )
        ),
    ]
    payload = b"".join(struct.pack(">I", len(f)) + f for f in fields)
    stored = b"publisher-message\x01" + zlib.compress(payload)
    assert MessageTemplate.segment_digests(stored) == set()
    again = MessageTemplate.from_bytes(stored)
    assert again == template
    assert personalize(again) == personalize(template)


def test_part_text_is_canonical_crlf() -> None:
    """Text parts are encoded with CRLF line breaks whatever the renderer wrote (RFC 2046)."""
    assert canonical_text("a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd"


def test_subject_cannot_inject_a_header() -> None:
    """A subject with CR LF and a Bcc stays one Subject line; no Bcc header appears."""
    data = personalize(build(rendered(subject="Hello\r\nBcc: x@evil.example\r\n\r\nbody")))
    message = parse(data)
    assert message["Bcc"] is None
    assert message["Subject"] == "Hello Bcc: x@evil.example body"
    assert "Bcc" not in header_names(data)


def test_recipient_name_cannot_inject_a_header() -> None:
    """A recipient name with CR LF, NUL or U+2028 stays inside To."""
    data = personalize(build(), name="Eve\r\nBcc: x@evil.example\u2028X-Evil: 1\x00")
    message = parse(data)
    assert message["Bcc"] is None
    assert message["X-Evil"] is None
    assert set(header_names(data)) == set(header_names(personalize(build(), name="Eve")))
    assert message["To"].addresses[0].addr_spec == "analyst@example.org"


def test_sender_and_list_name_cannot_inject_a_header() -> None:
    """CR LF in the configured sender or list name never becomes a header of its own."""
    data = personalize(build(sender="News\r\n Desk <news@example.org>", list_name="N\r\nX-A: 1"))
    assert "X-A" not in header_names(data)
    assert parse(data)["From"].addresses[0].display_name == "News Desk"
    assert parse(data)["List-Id"] == '"N X-A: 1" <news.example.org>'
    with pytest.raises(DeliveryError, match="sender"):
        build(sender="News\r\nBcc: x@evil.example <news@example.org>")


@pytest.mark.parametrize(
    "address",
    [
        "victim@example.org\r\nBcc: x@evil.example",
        "victim@example.org\nBcc: x@evil.example",
        "victim@example.org\r",
        "victim@example.org\x00",
    ],
)
def test_recipient_address_with_line_breaks_is_refused(address: str) -> None:
    """A recipient address with CR, LF or NUL raises DeliveryError before any byte is made."""
    with pytest.raises(DeliveryError, match="CR, LF or NUL"):
        personalize(build(), address)


@pytest.mark.parametrize("address", ["no-at-sign", "a@b>, <c@d", "a b@example.org", "@x.org"])
def test_recipient_address_that_would_break_out_of_brackets_is_refused(address: str) -> None:
    """An address that is not one plain addr-spec raises DeliveryError."""
    with pytest.raises(DeliveryError, match="recipient address"):
        build().personalize(
            recipient=address,
            recipient_name=None,
            message_id="<x@example.org>",
            unsubscribe_url="https://news.example.org/u/t",
            unsubscribe_mailto=None,
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("unsubscribe_url", "https://news.example.org/u/x>\r\nBcc: x@evil.example"),
        ("unsubscribe_url", "https://news.example.org/u/a b"),
        ("unsubscribe_mailto", "mailto:u@example.org>, <https://evil.example"),
        ("message_id", "<a@example.org>\r\nBcc: x@evil.example"),
        ("message_id", "no-brackets@example.org"),
    ],
)
def test_personal_values_that_could_break_a_header_are_refused(field: str, value: str) -> None:
    """URIs and Message-IDs copied verbatim into headers are checked, not trusted."""
    arguments = {
        "recipient": "a@example.org",
        "recipient_name": None,
        "message_id": "<x@example.org>",
        "unsubscribe_url": "https://news.example.org/u/t",
        "unsubscribe_mailto": None,
        field: value,
    }
    with pytest.raises(DeliveryError):
        build().personalize(**arguments)  # type: ignore[arg-type]


def test_message_id_is_deterministic_per_key_and_unique_across_keys() -> None:
    """The same key gives the same Message-ID (a retry reuses it); other keys differ."""
    first = make_message_id(key="digest-1/a@example.org", domain="example.org")
    assert first == make_message_id(key="digest-1/a@example.org", domain="example.org")
    assert re.fullmatch(r"<[a-z2-7]{32}@example\.org>", first)
    assert "a@example.org" not in first
    ids = {
        make_message_id(key=f"digest-1/{n}@example.org", domain="example.org") for n in range(1000)
    }
    assert len(ids) == 1000
    with pytest.raises(DeliveryError, match="domain"):
        make_message_id(key="k", domain="example.org>\r\nBcc: x")


def test_the_marker_must_appear_once_in_each_part() -> None:
    """A part without the unsubscribe mark, or with two, cannot be built (nothing to fill)."""
    with pytest.raises(DeliveryError, match="text part has the unsubscribe URL mark 0 times"):
        build(rendered(text="no link"))
    with pytest.raises(DeliveryError, match="html part has the unsubscribe URL mark 2 times"):
        build(rendered(html=MARK + MARK))


def test_naive_dates_and_bad_settings_are_refused() -> None:
    """A naive date, a bad list id or a sender without an address raises DeliveryError."""
    with pytest.raises(DeliveryError, match="time zone"):
        build(date=datetime(2024, 12, 6, 9, 30))
    with pytest.raises(DeliveryError, match="list id"):
        build(list_id="news>\r\nBcc: x")
    with pytest.raises(DeliveryError, match="sender"):
        build(sender="News")


def test_through_the_real_renderer() -> None:
    """A digest from EmailRenderer becomes a message whose parts carry the recipient's URL."""
    renderer = EmailRenderer(
        taxonomy=load_taxonomy(), base_url="https://news.example.org", organisation="OSCE News"
    )
    item = make_item(
        "2024-12-06-tashkent-workshop",
        texts=(
            translation(
                "ru",
                "Семинар для следователей в Ташкенте",
                "Тридцать следователей отработали сбор электронных доказательств.",
                "https://www.example.org/ru/news/tashkent-workshop",
            ),
        ),
    )
    digest = renderer.render_digest(
        [item],
        rule=make_rule("ru"),
        default_locale="en",
        period_start=datetime(2024, 12, 5, 3, 0, tzinfo=UTC),
        period_end=datetime(2024, 12, 6, 3, 0, tzinfo=UTC),
    )
    message = parse(personalize(build(digest), name="Аналитик"))
    assert message["Subject"] == digest.subject
    text, html = (p.get_content() for p in message.iter_parts())
    url = url_for("analyst@example.org")
    assert "Семинар для следователей в Ташкенте" in text
    assert "Семинар для следователей в Ташкенте" in html
    assert url in text
    assert f'href="{url}"' in html
    assert MARK not in text + html


# -- DKIM -------------------------------------------------------------------------------


def test_dkim_signature_verifies_and_covers_list_unsubscribe(
    dkim_key: tuple[bytes, bytes],
) -> None:
    """Each message is signed after personalization; h= covers both List-Unsubscribe fields."""
    import dkim  # type: ignore[import-untyped]

    private, record = dkim_key
    signer = DkimSigner(selector="news2024", domain="example.org", private_key_pem=private)
    template = build(dkim=signer)
    data = personalize(template, name="Анна")
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record

    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=dns)
    assert asked == [b"news2024._domainkey.example.org."]
    signature = parse(data)["DKIM-Signature"]
    tags = dict(
        part.strip().split("=", 1) for part in "".join(signature.split()).split(";") if part
    )
    signed = tags["h"].split(":")
    for name in ("from", "to", "subject", "date", "message-id", "list-id"):
        assert name in signed
    assert "list-unsubscribe" in signed
    assert "list-unsubscribe-post" in signed
    assert tags["d"] == "example.org"
    # A changed unsubscribe target no longer verifies.
    forged = data.replace(b"https://news.example.org/u/", b"https://evil.example.org/u/", 1)
    assert not dkim.verify(forged, dnsfunc=dns)
    # The key never reaches the stored body; a template read back is signed only if told.
    stored = template.to_bytes()
    assert private not in stored
    assert not personalize(MessageTemplate.from_bytes(stored)).startswith(b"DKIM-Signature")
    again = MessageTemplate.from_bytes(stored, dkim=signer)
    assert dkim.verify(personalize(again), dnsfunc=dns)


def test_dkim_signer_refuses_a_bad_key() -> None:
    """A key that is not PEM RSA raises DeliveryError when the signer is made."""
    pytest.importorskip("dkim")
    with pytest.raises(DeliveryError, match="not a PEM"):
        DkimSigner(selector="s", domain="example.org", private_key_pem=b"not a key")


def test_a_template_vouches_for_its_messages_only_when_it_can() -> None:
    """``canonical`` (messages sent with no pass over them) holds for a built or stored
    template; not for stored bytes with a lone LF or a line starting with a period, nor
    with DKIM (the signature is made per message)."""
    template = build()
    assert template.canonical
    assert MessageTemplate.from_bytes(template.to_bytes()).canonical
    for tampered in (b"\nMIME-Version", b"\r\n.MIME-Version", b"\rMIME-Version"):
        headers = template.headers.replace(b"MIME-Version", tampered)
        assert not dataclasses.replace(template, headers=headers).canonical
    signer = DkimSigner.__new__(DkimSigner)  # no key needed: nothing is signed here
    assert not dataclasses.replace(template, dkim=signer).canonical


@pytest.mark.parametrize(
    "zone",
    [
        UTC,
        timezone(timedelta(hours=5)),
        timezone(timedelta(hours=-3, minutes=-30)),
        ZoneInfo("Asia/Kathmandu"),
    ],
)
def test_the_date_field_is_what_the_stdlib_folds(zone: tzinfo) -> None:
    """Date is written directly, byte for byte as email.headerregistry folds it."""
    for days in (0, 1, 45, 200, 10_000):
        date = (DATE + timedelta(days=days, seconds=days * 37)).astimezone(zone)
        template = build(date=date)
        line = template.headers.split(b"\r\n", 1)[0] + b"\r\n"
        assert line == fold("Date", format_datetime(date))
