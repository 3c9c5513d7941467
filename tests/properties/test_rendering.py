"""Alerts and digests of hostile items (issue "Reliability and security", part 4).

Whatever an item's title, summary, body and link say, in whichever of the nine locales
and time zones, with whatever issuer, fields of work and countries: the HTML part has no
script, no event handler and no executable URL; the subject is one line; the text part
shows the item's text as text and none of its HTML; and each part keeps exactly one
unsubscribe marker for the sender to fill in.

Items here are built directly, not collected: the renderer must hold even for what the
sources never let through (defence in depth).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

import css_inline
import lxml.html
from hypothesis import example, given
from hypothesis import strategies as st

from publisher.matching.language import choose_translation
from publisher.rendering import UNSUBSCRIBE_URL_MARK, EmailRenderer, RenderedEmail
from publisher.rendering.emails import _as_inliner_writes
from publisher.store.items import StoredItem, StoredTranslation
from publisher.subscriptions.model import Rule
from tests.properties.conftest import (
    LOCALES,
    TAXONOMY,
    examples,
    executable_parts,
    hostile_text,
)
from tests.rendering.conftest import make_rule

SEEN = datetime(2024, 12, 6, 10, 0, tzinfo=UTC)
START = datetime(2024, 12, 5, 3, 0, tzinfo=UTC)
END = datetime(2024, 12, 6, 3, 0, tzinfo=UTC)
ZONES = ("UTC", "Asia/Tashkent", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago")
# In every body, never to be shown in an email's text part.
BODY_ONLY = '<p class="body-only">BODY-ONLY</p>'

# Links the sources let through: http(s), whatever follows.
_WEB_URLS = st.none() | st.builds(
    "{}://{}".format, st.sampled_from(["http", "https", "HTTPS"]), hostile_text(max_pieces=3)
)
_EXECUTABLE_URLS = st.builds(
    "{}{}".format,
    st.sampled_from(
        ["javascript:", " JavaScript:", "java\tscript:", "\x01javascript:", "vbscript:"]
    ),
    hostile_text(max_pieces=2),
) | st.just("data:text/html,<script>alert(1)</script>")
_PUBLISHED = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def _items(draw: st.DrawFn, number: int, urls: st.SearchStrategy[str | None]) -> StoredItem:
    """An item in one to three of the nine languages, every text hostile."""
    texts = {}
    for lang in draw(st.lists(st.sampled_from(LOCALES), min_size=1, max_size=3, unique=True)):
        texts[lang] = StoredTranslation(
            lang=lang,
            title=draw(hostile_text(min_pieces=1)),
            summary=draw(hostile_text()),
            body_html=draw(hostile_text()) + BODY_ONLY,
            url=draw(urls),
            first_seen=SEEN,
            changed_at=SEEN,
        )
    return StoredItem(
        id=f"item-{number}",
        source="newsroom",
        published=draw(_PUBLISHED),
        updated=None,
        issuer=draw(st.none() | st.sampled_from(sorted(TAXONOMY.issuers))),
        fields_of_work=tuple(
            draw(
                st.lists(st.sampled_from(sorted(TAXONOMY.fields_of_work)), unique=True, max_size=4)
            )
        ),
        countries=tuple(
            draw(st.lists(st.sampled_from(sorted(TAXONOMY.countries)), unique=True, max_size=4))
        ),
        first_seen=SEEN,
        changed_at=SEEN,
        translations=texts,
    )


_RULES = st.builds(make_rule, st.sampled_from(LOCALES), timezone=st.sampled_from(ZONES))


def _renderer() -> EmailRenderer:
    """A renderer per example: its item cache must not carry one example into the next."""
    return EmailRenderer(
        taxonomy=TAXONOMY, base_url="https://news.example.org", organisation="OSCE News"
    )


def _render_both(
    items: list[StoredItem], rule: Rule
) -> list[tuple[RenderedEmail, list[StoredItem]]]:
    """The alert for the first item and the digest of them all, with the items each shows."""
    renderer = _renderer()
    alert = renderer.render_alert(items[0], rule=rule, default_locale="en")
    digest = renderer.render_digest(
        items, rule=rule, default_locale="en", period_start=START, period_end=END
    )
    return [(alert, items[:1]), (digest, items)]


def _as_html_text(value: str) -> str:
    """``value`` as the HTML part shows it: css_inline's HTML5 parser drops NUL in text."""
    return value.replace("\x00", "")


def _item_lists(
    urls: st.SearchStrategy[str | None] = _WEB_URLS,
) -> st.SearchStrategy[list[StoredItem]]:
    """One to three items, each with its own id."""
    return st.integers(1, 3).flatmap(
        lambda count: st.tuples(*(_items(n, urls) for n in range(count))).map(list)
    )


def _plain_item(*, url: str | None = None, published: datetime = SEEN) -> StoredItem:
    """An item in English with plain texts."""
    return StoredItem(
        id="item-0",
        source="newsroom",
        published=published,
        updated=None,
        issuer=None,
        fields_of_work=(),
        countries=(),
        first_seen=SEEN,
        changed_at=SEEN,
        translations={"en": StoredTranslation("en", "Title", "Summary.", "", url, SEEN, SEEN)},
    )


@examples(60)
@given(items=_item_lists(), rule=_RULES)
def test_no_hostile_item_makes_an_email_executable_or_breaks_its_parts(
    items: list[StoredItem], rule: Rule
) -> None:
    """Alert and digest of hostile items: inert HTML, a one-line subject, text as text."""
    for email, shown_items in _render_both(items, rule):
        found = executable_parts(email.html)
        assert found == [], found
        assert email.subject.splitlines() in ([], [email.subject]), repr(email.subject)
        assert email.html.count(UNSUBSCRIBE_URL_MARK) == 1
        assert email.text.count(UNSUBSCRIBE_URL_MARK) == 1
        document = lxml.html.document_fromstring(email.html)
        # The footer's link is read back: the parser saw the whole document.
        assert [a.get("href") for a in document.iter("a")][-1] == UNSUBSCRIBE_URL_MARK
        links = {a.text_content() for a in document.cssselect(".item-title a")}
        assert "BODY-ONLY" not in email.text
        for item in shown_items:
            shown, _ = choose_translation(item, rule, default_locale="en")
            title = " ".join(shown.title.split())
            if UNSUBSCRIBE_URL_MARK in title:  # defused on purpose; tests/rendering pins it
                continue
            assert title in email.text, f"{title!r} not as it is in the text part"
            assert _as_html_text(title) in links, f"{title!r} not the link text in {links}"


@examples(20)
@example(items=[_plain_item(url="javascript:alert(1)")], rule=make_rule("en"))
@given(items=_item_lists(urls=_EXECUTABLE_URLS), rule=_RULES)
def test_an_item_link_never_becomes_an_executable_link(items: list[StoredItem], rule: Rule) -> None:
    """Whatever URL the store holds for an item, no email links to it as a script."""
    for email, _ in _render_both(items, rule):
        found = executable_parts(email.html)
        assert found == [], found


@examples(20)
@example(published=datetime(9999, 12, 31, 23, 0, tzinfo=UTC), zone="Asia/Tashkent")
@given(published=st.datetimes(timezones=st.just(UTC)), zone=st.sampled_from(ZONES))
def test_an_item_of_any_date_renders_in_any_time_zone(published: datetime, zone: str) -> None:
    """An item dated anywhere in datetime's range renders as an alert and a digest in every zone."""
    _render_both([_plain_item(published=published)], make_rule("en", timezone=zone))


# Zones whose offsets are not whole hours, and one with a half-hour daylight-saving shift.
_ODD_ZONES = ("Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns")


@examples(40)
@given(
    items=_item_lists(),
    rules=st.lists(
        st.builds(
            make_rule,
            st.sampled_from(LOCALES),
            timezone=st.sampled_from(ZONES + _ODD_ZONES),
            fallback_locales=st.lists(st.sampled_from(LOCALES), max_size=2).map(tuple),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_assembled_emails_are_the_emails_rendered_whole(
    items: list[StoredItem], rules: list[Rule]
) -> None:
    """An email assembled from shared blocks, their moments filled in per zone, is byte
    for byte the email rendered whole, for every rule after the first of its locale too
    (which alone is compared by the renderer itself)."""
    assembled = _renderer()
    whole = EmailRenderer(
        taxonomy=TAXONOMY,
        base_url="https://news.example.org",
        organisation="OSCE News",
        assemble=False,
    )
    for rule in rules:
        for renderer_items in (items, list(reversed(items)), items[1:]):
            if not renderer_items:
                continue
            ours = assembled.render_digest(
                renderer_items, rule=rule, default_locale="en", period_start=START, period_end=END
            )
            theirs = whole.render_digest(
                renderer_items, rule=rule, default_locale="en", period_start=START, period_end=END
            )
            assert ours == theirs
        for item in items:
            ours = assembled.render_alert(item, rule=rule, default_locale="en")
            assert ours == whole.render_alert(item, rule=rule, default_locale="en")
    # Assembled indeed: no kind and locale fell back to rendering whole.
    assert all(assembled._assembles.values()), assembled._assembles


@examples(100)
@example(text="6\u00a0déc. <2024> & 'x' \"y\"\u202f")
@given(text=st.text(st.characters(codec="utf-8", exclude_characters="\x00\r")))
def test_a_moment_is_filled_in_as_the_css_inliner_writes_it(text: str) -> None:
    """What the renderer puts in place of a moment's mark in inlined HTML is what the
    CSS inliner writes for the same text rendered in the document."""
    inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
    written = inliner.inline(f"<html><body><p>{html.escape(text)}</p></body></html>")
    inner = written.split("<p>", 1)[1].rsplit("</p>", 1)[0]
    assert inner == _as_inliner_writes(text)
