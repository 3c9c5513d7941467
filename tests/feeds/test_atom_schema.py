"""The Atom validator: RFC 4287 Appendix B's schema accepts good feeds and rejects broken ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from feedgen.feed import FeedGenerator

from tests.feeds.atom_schema import validate_atom

FEED = """\
<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <id>urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6</id>
  <title>Publisher news</title>
  <updated>2024-12-06T10:00:00Z</updated>
  <author>
    <name>The editors</name>
    <email>editors@example.org</email>
  </author>
  <link rel="self" type="application/atom+xml" href="https://example.org/feed.atom"/>
  <entry xml:lang="fr">
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>
    <title type="text">Le conseil vote le budget</title>
    <published>2024-12-06T09:30:00+01:00</published>
    <updated>2024-12-06T10:00:00Z</updated>
    <author>
      <name>Claire Dupont</name>
      <uri>https://example.org/claire</uri>
    </author>
    <category term="politics" scheme="https://example.org/topics/" label="Politique"/>
    <category term="local"/>
    <link rel="alternate" type="text/html" hreflang="fr" href="https://example.org/fr/budget"/>
    <link rel="alternate" type="text/html" hreflang="en" href="https://example.org/en/budget"/>
    <summary>Le budget 2025 est adopté.</summary>
    <content type="html">&lt;p&gt;Le budget 2025 est adopté.&lt;/p&gt;</content>
  </entry>
</feed>
"""


def broken(old: str, new: str) -> bytes:
    """FEED with one fragment replaced; the fragment must be there, so the edit cannot miss."""
    assert FEED.count(old) == 1, old
    return FEED.replace(old, new).encode("utf-8")


def test_valid_feed_passes() -> None:
    """A complete feed with a translated entry, categories, links and HTML content is valid."""
    validate_atom(FEED.encode("utf-8"))


def test_feed_without_id_fails() -> None:
    """A feed must have an atom:id."""
    with pytest.raises(AssertionError, match="not valid Atom"):
        validate_atom(broken("<id>urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6</id>", ""))


def test_entry_without_updated_fails() -> None:
    """An entry must have an atom:updated."""
    with pytest.raises(AssertionError, match="not valid Atom"):
        validate_atom(
            broken("    <updated>2024-12-06T10:00:00Z</updated>\n    <author>", "<author>")
        )


def test_link_without_href_fails() -> None:
    """A link must have an href attribute."""
    with pytest.raises(AssertionError, match="not valid Atom"):
        validate_atom(broken(' href="https://example.org/en/budget"', ""))


@pytest.mark.parametrize(
    "date",
    [
        "Fri, 06 Dec 2024 09:30:00 +0100",  # RFC 822, as in RSS
        "2024-12-06 09:30:00Z",  # a space instead of the T
        "2024-12-06",  # a date without a time
        "2024-13-06T09:30:00Z",  # no 13th month
    ],
)
def test_date_that_is_not_rfc3339_fails(date: str) -> None:
    """A date construct must hold an RFC 3339 date-time."""
    with pytest.raises(AssertionError, match="dateTime"):
        validate_atom(broken("2024-12-06T09:30:00+01:00", date))


def test_unknown_atom_element_fails() -> None:
    """An element in the Atom namespace that RFC 4287 does not define is rejected."""
    with pytest.raises(AssertionError, match="not valid Atom"):
        validate_atom(broken("<summary>", "<subject>Budget</subject>\n    <summary>"))


def test_foreign_extension_element_passes() -> None:
    """An element from another namespace is an extension and is allowed."""
    validate_atom(
        broken(
            "<summary>",
            '<dc:subject xmlns:dc="http://purl.org/dc/elements/1.1/">Budget</dc:subject><summary>',
        )
    )


@pytest.mark.parametrize(
    "content",
    [
        "Le conseil vote le budget",  # plain text
        '<p xmlns="http://www.w3.org/1999/xhtml">Le conseil</p>',  # not a div
        "<div>Le conseil</div>",  # a div outside the XHTML namespace
        '<div xmlns="http://www.w3.org/1999/xhtml">Le conseil</div>'
        '<div xmlns="http://www.w3.org/1999/xhtml">vote</div>',  # two divs
    ],
)
def test_xhtml_text_that_is_not_one_xhtml_div_fails(content: str) -> None:
    """A text construct of type xhtml must hold exactly one xhtml:div."""
    with pytest.raises(AssertionError, match="not valid Atom"):
        validate_atom(
            broken(
                '<title type="text">Le conseil vote le budget</title>',
                f'<title type="xhtml">{content}</title>',
            )
        )


def test_xhtml_text_in_one_xhtml_div_passes() -> None:
    """A text construct of type xhtml holding a single xhtml:div with markup is valid."""
    validate_atom(
        broken(
            '<title type="text">Le conseil vote le budget</title>',
            '<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
            "Le conseil vote le <em>budget</em></div></title>",
        )
    )


def test_error_carries_lines_and_messages() -> None:
    """The failure message carries lxml's line numbers and messages for what is wrong."""
    entry_line = FEED.splitlines().index('  <entry xml:lang="fr">') + 1
    with pytest.raises(AssertionError) as failure:
        validate_atom(broken(' href="https://example.org/en/budget"', ""))
    message = str(failure.value)
    assert "Element link failed to validate attributes" in message
    assert f"line {entry_line}, column 0 (/*/*[6]): Element entry failed to validate" in message


def test_malformed_xml_fails() -> None:
    """A document that is not well-formed XML fails with an AssertionError too."""
    with pytest.raises(AssertionError, match="not well-formed"):
        validate_atom(broken("</feed>", ""))


def test_feedgen_feed_passes() -> None:
    """A feed written by feedgen, with authors, links, categories and HTML content, is valid."""
    published = datetime(2024, 12, 6, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    updated = datetime(2024, 12, 6, 10, 0, tzinfo=UTC)
    fg = FeedGenerator()
    fg.id("https://example.org/feed.atom")
    fg.title("Publisher news")
    fg.subtitle("Each reader gets only the news they follow.")
    fg.updated(updated)
    fg.language("en")
    fg.author({"name": "The editors", "email": "editors@example.org"})
    fg.link(href="https://example.org/feed.atom", rel="self", type="application/atom+xml")
    fg.link(href="https://example.org/", rel="alternate", type="text/html")
    fg.rights("CC BY 4.0")
    for number, lang in enumerate(["fr", "en"]):
        fe = fg.add_entry(order="append")
        fe.id(f"https://example.org/{lang}/budget")
        fe.title(f"Budget ({lang})")
        fe.published(published)
        fe.updated(updated)
        fe.author({"name": "Claire Dupont", "uri": "https://example.org/claire"})
        fe.link(href=f"https://example.org/{lang}/budget", rel="alternate", hreflang=lang)
        fe.category(term="politics", scheme="https://example.org/topics/", label="Politics")
        fe.summary(f"Summary {number}")
        fe.content(f"<p>Budget {number}</p>", type="html")
    validate_atom(fg.atom_str(pretty=True))
