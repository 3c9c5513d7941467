"""One collection cycle over hostile sources (issue "Reliability and security", part 4).

Whatever a folder of Markdown files or a feed file holds, ``collect()`` returns one
report per source without raising, and the store ends up holding only one-line plain
titles and summaries, HTML with nothing executable, and http(s) links.

Each source is tried two ways. *Well-formed* files (front matter between ``---`` lines,
UTF-8; RSS or Atom that XML parsers accept) carry hostile values (markup, control
characters, header syntax, odd dates, unknown keys, nesting, huge strings), so most of
their items reach the store and what the store holds gets checked. *Damaged* files
(random bytes, wrong encodings, broken framing, stray bytes, raw markup and bad
character references in XML, truncation) test that nothing escapes the cycle.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

from publisher.collect import SourceReport, collect
from publisher.settings import FeedSourceSettings, FolderSourceSettings, Settings
from publisher.store import StoredItem, load_items
from tests.properties.conftest import (
    TAXONOMY,
    examples,
    executable_parts,
    executable_url,
    fresh_store,
    hostile_text,
    line_problem,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# A file every folder in these tests holds, in a subfolder the generated files never
# use: what another file holds must not cost it its place in the store.
GOOD_ID = "property-good-item"
GOOD_FILE = (
    f"---\nid: {GOOD_ID}\ntitle: A good item\npublished: 2024-12-06T10:00:00+05:00\n---\n"
    "A good body.\n"
).encode()


# -- running one cycle ------------------------------------------------------------------


def _cycle(
    template: Path, *, files: dict[str, bytes], feed: bytes | None = None
) -> tuple[list[SourceReport], list[StoredItem]]:
    """One ``collect()`` over a folder holding ``files`` (and the good file) and, when
    ``feed`` is given, a feed source reading it from a file; the reports and the store."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        content = folder / "content"
        (content / "good").mkdir(parents=True)
        (content / "good" / "good-item.en.md").write_bytes(GOOD_FILE)
        for name, data in files.items():
            (content / name).write_bytes(data)
        sources: list[FolderSourceSettings | FeedSourceSettings] = [
            FolderSourceSettings(name="folder", kind="folder", path=content)
        ]
        if feed is not None:
            (folder / "feed.xml").write_bytes(feed)
            sources.append(
                FeedSourceSettings(name="feed", kind="feed", url=str(folder / "feed.xml"))
            )
        settings = Settings(sources=sources)
        with fresh_store(template, folder) as engine:
            reports = asyncio.run(collect(settings, engine, taxonomy=TAXONOMY, clock=lambda: NOW))
            with engine.connect() as conn:
                return reports, load_items(conn)


def _assert_clean(items: list[StoredItem]) -> None:
    """Every stored translation: a one-line title and summary, inert HTML, an http(s) link."""
    # --hypothesis-show-statistics shows how often hostile text got as far as the store.
    event("hostile items stored" if len(items) > 1 else "no hostile item stored")
    for item in items:
        assert item.translations, f"{item.id}: stored without a translation"
        for lang, text in item.translations.items():
            where = f"{item.id}/{lang}"
            assert text.title.strip(), f"{where}: empty title"
            assert len(text.title) <= 500, f"{where}: a title of {len(text.title)} characters"
            assert line_problem(text.title) is None, f"{where} title: {line_problem(text.title)}"
            problem = line_problem(text.summary)
            assert problem is None, f"{where} summary: {problem}"
            found = executable_parts(text.body_html)
            assert found == [], f"{where} body: {found} in {text.body_html[:500]!r}"
            # Sanitized HTML escapes every "<" that does not open an allowed tag.
            assert "<script" not in text.body_html.lower(), f"{where}: {text.body_html[:500]!r}"
            if text.url is not None:
                scheme = urlsplit(text.url).scheme.lower()
                assert scheme in {"http", "https"}, f"{where}: {text.url!r}"
                assert not executable_url(text.url), f"{where}: {text.url!r}"


def _good_item_stored(items: list[StoredItem]) -> bool:
    return any(i.id == GOOD_ID and i.translations["en"].title == "A good item" for i in items)


# -- shared strategies ------------------------------------------------------------------


def _long(size: int) -> str:
    return "x" * size


def _words(count: int) -> str:
    return "word " * count


_OFFSETS = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
).map(timezone)
# Bytes that break an encoding, YAML or XML, put anywhere in a damaged file.
_JUNK = (b"\x00", b"\t", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\r", b"\n---\n", b"\xef\xbb\xbf")


def _insert_junk(draw: st.DrawFn, data: bytes) -> bytes:
    spots = st.tuples(st.integers(0, len(data)), st.sampled_from(_JUNK))
    for position, junk in draw(st.lists(spots, max_size=2)):
        data = data[:position] + junk + data[position:]
    return data


# -- folder files -----------------------------------------------------------------------

_BASES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)
_LANGS = st.sampled_from(("en", "ru", "ar", "uk", "pt_BR", "pt-BR"))
_WELL_NAMED = st.builds("{}.{}.md".format, _BASES, _LANGS)
_ANY_NAMED = st.builds(
    lambda base, lang: f"{base}.{lang}.md" if lang else f"{base}.md",
    _BASES,
    _LANGS | st.sampled_from(("EN", "xx", "zz_ZZ", "", "en_")),
)

# Published before 2050 and updated after, so that well-formed files are read.
_PUBLISHED = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2049, 12, 31), timezones=_OFFSETS
).map(datetime.isoformat)
_UPDATED = st.datetimes(
    min_value=datetime(2050, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS
).map(datetime.isoformat)
_ANY_DATES = st.one_of(
    _PUBLISHED,
    # Naive ones, and the first and last years, whose UTC time may not exist.
    st.datetimes(timezones=st.none() | _OFFSETS).map(datetime.isoformat),
    st.sampled_from(
        ["2024-12-06", "2024-12-06T10:00:00Z", "06/12/2024", "2024-13-45T25:61:00+05:00", "", "~"]
    ),
    hostile_text(max_pieces=2),
)
# Words YAML 1.1 would turn into something else, and a very long value.
_SPECIAL = st.sampled_from(
    ["NO", "yes", "~", "1:20", "0x1F", ".inf", "!!python/object:os.system"]
) | st.just(300_000).map(_long)
_SCALARS = st.one_of(
    hostile_text(), st.integers(), st.floats(), st.booleans(), st.none(), _SPECIAL, _ANY_DATES
)
_LABELS = st.text(max_size=5)
# Nested two and three deep (st.recursive can warn, at random, that it cannot recurse).
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(_LABELS, _SCALARS | st.lists(_SCALARS, max_size=2), max_size=3),
    st.lists(st.dictionaries(_LABELS, st.lists(_SCALARS, max_size=2), max_size=2), max_size=2),
)
_KEYS = ("id", "title", "published", "updated", "issuer", "fields_of_work", "countries", "summary")
# Front matter of any keys and values, known or not.
_ANY_FRONT = st.dictionaries(
    st.sampled_from(_KEYS) | hostile_text(max_pieces=2), _VALUES, max_size=8
)
# Front matter a folder source reads, every text in it hostile.
_READABLE_FRONT = st.fixed_dictionaries(
    {"title": hostile_text(min_pieces=1), "published": _PUBLISHED},
    optional={
        "summary": hostile_text(),
        "id": hostile_text(max_pieces=2),
        "issuer": st.sampled_from(sorted(TAXONOMY.issuers)),
        "fields_of_work": st.lists(st.sampled_from(sorted(TAXONOMY.fields_of_work)), max_size=3),
        "countries": st.lists(
            st.sampled_from(sorted(TAXONOMY.countries)) | st.sampled_from(sorted(TAXONOMY.regions)),
            max_size=3,
        ),
        "updated": _UPDATED,
    },
)
_MARKDOWN = (
    "# Heading <script>alert(1)</script>",
    "> quote\n> > nested",
    "- item\n  - [x](javascript:alert(1))",
    "```\ncode <script>alert(1)</script>\n```",
    "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | [y](vbscript:x) |",
    "<div onclick=alert(1)>\n\n*markdown inside*\n\n</div>",
    '[link](javascript:alert(1) "t") ![image](javascript:alert(1))',
    "<https://example.org/?a=1&b=2>",
    "\t\tindented\twith\ttabs",
)
_BODIES = st.lists(
    hostile_text(max_pieces=3) | st.sampled_from(_MARKDOWN) | st.just(60_000).map(_words),
    max_size=5,
).map("\n\n".join)


def _yaml(draw: st.DrawFn, mapping: Mapping[str, object]) -> str:
    """``mapping`` as YAML in one of its styles."""
    style = draw(st.sampled_from(["block", "flow", "double", "single"]))
    text: str = yaml.safe_dump(
        mapping,
        allow_unicode=draw(st.booleans()),
        default_flow_style=style == "flow",
        default_style={"double": '"', "single": "'"}.get(style),
        width=draw(st.sampled_from([80, 1_000_000])),
    )
    return text


@st.composite
def _well_formed_files(draw: st.DrawFn) -> bytes:
    """UTF-8, front matter between --- lines, keys and values a folder source reads."""
    front = _yaml(draw, draw(_READABLE_FRONT))
    return ("---\n" + front + "---\n" + draw(_BODIES)).encode("utf-8")


@st.composite
def _damaged_files(draw: st.DrawFn) -> bytes:
    """Broken framing, any keys and values, typed-in YAML, wrong encodings, stray bytes."""
    mapping = draw(_ANY_FRONT | _READABLE_FRONT)
    if draw(st.booleans()):
        front = _yaml(draw, mapping)
    else:  # "key: value" lines as typed, nothing quoted
        front = "".join(f"{key}: {value}\n" for key, value in mapping.items())
    opening = draw(st.sampled_from(["---\n", "---\r\n", "\ufeff---\n", "--- \t\n", "", "----\n"]))
    closing = draw(st.sampled_from(["---\n", "---\r\n", "---", "", "...\n"]))
    text = opening + front + closing + draw(_BODIES)
    newline = draw(st.sampled_from(["\n", "\r\n", "\r", "\n\t", "\u2028"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1251"]))
    data = text.replace("\n", newline).encode(encoding, errors="replace")
    return _insert_junk(draw, data)


_DAMAGED_FILES = st.one_of(
    st.binary(max_size=300), st.text(max_size=300).map(str.encode), _damaged_files()
)


@examples(30)
@given(files=st.dictionaries(_WELL_NAMED, _well_formed_files(), min_size=1, max_size=3))
def test_well_formed_files_with_hostile_values_store_only_clean_items(
    files: dict[str, bytes], store_template: Path
) -> None:
    """Readable NAME.LANG.md files with hostile values: one report, only clean items stored."""
    reports, items = _cycle(store_template, files=files)
    assert [report.source for report in reports] == ["folder"]
    assert reports[0].error is None, reports[0].error
    _assert_clean(items)


@examples(30)
@given(files=st.dictionaries(_ANY_NAMED, _DAMAGED_FILES, min_size=1, max_size=3))
def test_damaged_files_never_stop_the_cycle(files: dict[str, bytes], store_template: Path) -> None:
    """Any bytes in NAME.LANG.md files: collect() returns one report and stores only clean items."""
    reports, items = _cycle(store_template, files=files)
    assert [report.source for report in reports] == ["folder"]
    _assert_clean(items)


@examples(20)
@example(broken=b"---\ntitle: x\npublished: 9999-12-31T23:59:59-23:59\n---\n")
@example(broken=b"---\ntitle: " + b"[" * 1000 + b"\n---\n")
@given(broken=_DAMAGED_FILES | _well_formed_files())
def test_a_broken_file_costs_only_itself(broken: bytes, store_template: Path) -> None:
    """Whatever one file holds, the folder's other files are stored and the source has no error."""
    reports, items = _cycle(store_template, files={"broken.en.md": broken})
    [report] = reports
    assert report.error is None, report.error
    assert _good_item_stored(items)


@examples(10)
@example(key="title", value="\ud800")
@given(key=st.sampled_from(["title", "summary", "id"]), value=hostile_text(surrogates=True))
def test_a_surrogate_escape_in_front_matter_does_not_stop_the_cycle(
    key: str, value: str, store_template: Path
) -> None:
    """A front matter value escaping lone surrogates ("\\ud800") never makes collect() raise."""
    front = {"title": "A title", "published": "2024-12-06T10:00:00+05:00", key: value}
    data = ("---\n" + yaml.safe_dump(front) + "---\nBody.\n").encode("ascii")
    reports, items = _cycle(store_template, files={"surrogate.en.md": data})
    assert [report.source for report in reports] == ["folder"]
    _assert_clean(items)


# -- feed files -------------------------------------------------------------------------

_URLS = st.one_of(
    st.sampled_from(
        [
            "https://example.org/news/1",
            "http://example.org/b?x=1&y=2",
            "javascript:alert(1)",
            " JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "//evil.example/x",
            "/relative/path",
            "ftp://example.org/file",
        ]
    ),
    hostile_text(max_pieces=2).map(lambda rest: "https://example.org/" + rest),
    hostile_text(max_pieces=2),
)
_FEED_DATES = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS
)
_TERMS = (
    st.sampled_from(sorted(TAXONOMY.fields_of_work))
    | st.sampled_from(sorted(TAXONOMY.countries))
    | hostile_text(max_pieces=1)
)
_AUTHORS = st.sampled_from(sorted(TAXONOMY.issuers)) | hostile_text(max_pieces=1)
_LANGUAGES = st.sampled_from(["en", "ru", "en-US", "pt-BR", "ar", "zz", ""]) | hostile_text(
    max_pieces=1
)
# What XML 1.0 cannot hold at all (§2.2), escaped or not.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Xml:
    """Writes text into a document: well-formed, or damaged in the ways feeds are."""

    def __init__(self, draw: st.DrawFn, *, damaged: bool) -> None:
        self.draw = draw
        self.damaged = damaged

    def text(self, value: str) -> str:
        """Element content: escaped or in CDATA; when damaged, also raw, as character
        references (of anything, NUL and surrogates included), with stray references."""
        modes = ["escaped", "cdata", "references", "raw"] if self.damaged else ["escaped", "cdata"]
        mode = self.draw(st.sampled_from(modes))
        if not self.damaged:
            value = _NOT_XML.sub("", value)
            if "]]>" in value:
                mode = "escaped"
        if mode == "escaped":
            written = escape(value)
        elif mode == "cdata":
            written = f"<![CDATA[{value}]]>"
        elif mode == "references":
            written = "".join(f"&#{ord(c)};" for c in value)
        else:
            written = value
        return written + self._stray_references()

    def attribute(self, value: str) -> str:
        if not self.damaged:
            return quoteattr(_NOT_XML.sub("", value))
        return self.draw(st.sampled_from([quoteattr(value), f'"{value}"']))

    def _stray_references(self) -> str:
        if not self.damaged:
            return ""
        references = st.one_of(
            st.integers(0, 0x11_0000).map(lambda c: f"&#x{c:x};"),
            st.sampled_from(["&nbsp;", "&bogus;", "&amp", "&#;", "&#x;", "&lt;script&gt;"]),
        )
        return "".join(self.draw(st.lists(references, max_size=2)))

    def document(self, text: str) -> bytes:
        if not self.damaged:
            return ('<?xml version="1.0" encoding="utf-8"?>\n' + text).encode("utf-8")
        declaration = self.draw(
            st.sampled_from(
                [
                    '<?xml version="1.0" encoding="utf-8"?>\n',
                    '<?xml version="1.0" encoding="iso-8859-1"?>\n',
                    '<?xml version="1.0" encoding="bogus"?>\n',
                    "",
                ]
            )
        )
        encoding = self.draw(st.sampled_from(["utf-8", "utf-16", "latin-1"]))
        data = (declaration + text).encode(encoding, errors="replace")
        if self.draw(st.booleans()):
            data = data[: self.draw(st.integers(0, len(data)))]
        return _insert_junk(self.draw, data)


@st.composite
def _rss_documents(draw: st.DrawFn, *, damaged: bool) -> bytes:
    xml = _Xml(draw, damaged=damaged)
    items = []
    for _ in range(draw(st.integers(1, 3))):
        fields = [
            f"<title>{xml.text(draw(hostile_text(min_pieces=1)))}</title>",
            f"<pubDate>{xml.text(draw(_FEED_DATES.map(format_datetime)))}</pubDate>",
        ]
        optional = [
            ("link", _URLS),
            ("guid", hostile_text(max_pieces=2)),
            ("description", hostile_text()),
            ("content:encoded", hostile_text()),
            ("category", _TERMS),
            ("dc:creator", _AUTHORS),
        ]
        for tag, strategy in optional:
            if draw(st.booleans()):
                fields.append(f"<{tag}>{xml.text(draw(strategy))}</{tag}>")
        items.append("<item>" + "".join(draw(st.permutations(fields))) + "</item>")
    return xml.document(
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        f"<title>{xml.text(draw(hostile_text()))}</title>\n"
        "<link>https://example.org/</link>\n<description>News</description>\n"
        f"<language>{xml.text(draw(_LANGUAGES))}</language>\n"
        + "\n".join(items)
        + "\n</channel>\n</rss>\n"
    )


@st.composite
def _atom_documents(draw: st.DrawFn, *, damaged: bool) -> bytes:
    xml = _Xml(draw, damaged=damaged)
    entries = []
    for _ in range(draw(st.integers(1, 3))):
        fields = [f"<id>{xml.text(draw(hostile_text(max_pieces=2)))}</id>"]
        fields.append(_atom_text(draw, xml, "title", draw(hostile_text(min_pieces=1))))
        for tag in draw(st.lists(st.sampled_from(["updated", "published"]), min_size=1)):
            fields.append(f"<{tag}>{xml.text(draw(_FEED_DATES).isoformat())}</{tag}>")
        for _ in range(draw(st.integers(0, 2))):
            fields.append(
                f'<link rel="alternate" hreflang={xml.attribute(draw(_LANGUAGES))} '
                f"href={xml.attribute(draw(_URLS))}/>"
            )
        for tag in ("summary", "content"):
            if draw(st.booleans()):
                fields.append(_atom_text(draw, xml, tag, draw(hostile_text())))
        if draw(st.booleans()):
            fields.append(f"<category term={xml.attribute(draw(_TERMS))}/>")
        if draw(st.booleans()):
            fields.append(f"<author><name>{xml.text(draw(_AUTHORS))}</name></author>")
        language = xml.attribute(draw(_LANGUAGES))
        entries.append(f"<entry xml:lang={language}>" + "".join(fields) + "</entry>")
    return xml.document(
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
        f"<title>{xml.text(draw(hostile_text()))}</title>\n"
        "<id>urn:example:feed</id>\n<updated>2024-12-09T08:00:00Z</updated>\n"
        + "\n".join(entries)
        + "\n</feed>\n"
    )


def _atom_text(draw: st.DrawFn, xml: _Xml, tag: str, value: str) -> str:
    """An Atom text construct (RFC 4287 §3.1) of any type; XHTML only when damaged, as its
    content must be well-formed markup."""
    kinds = ["text", "html", "xhtml", "text/plain", "bogus"] if xml.damaged else ["text", "html"]
    kind = draw(st.sampled_from(kinds))
    if kind == "xhtml":
        return (
            f'<{tag} type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">{value}</div></{tag}>'
        )
    return f'<{tag} type="{kind}">{xml.text(value)}</{tag}>'


_WELL_FORMED_FEEDS = _rss_documents(damaged=False) | _atom_documents(damaged=False)
_DAMAGED_FEEDS = st.one_of(
    st.binary(max_size=300), _rss_documents(damaged=True), _atom_documents(damaged=True)
)


@examples(30)
@given(document=_WELL_FORMED_FEEDS)
def test_a_well_formed_feed_with_hostile_values_stores_only_clean_items(
    document: bytes, store_template: Path
) -> None:
    """A well-formed hostile feed beside a good folder: two reports, only clean items stored."""
    reports, items = _cycle(store_template, files={}, feed=document)
    assert [report.source for report in reports] == ["folder", "feed"]
    assert reports[0].ok, reports[0]
    assert reports[1].error is None, reports[1].error
    assert _good_item_stored(items)
    _assert_clean(items)


@examples(30)
@given(document=_DAMAGED_FEEDS)
def test_a_damaged_feed_never_stops_the_cycle(document: bytes, store_template: Path) -> None:
    """Any bytes as a feed beside a good folder: two reports, the good item stored, all clean."""
    reports, items = _cycle(store_template, files={}, feed=document)
    assert [report.source for report in reports] == ["folder", "feed"]
    assert reports[0].ok, reports[0]
    assert _good_item_stored(items)
    _assert_clean(items)


# Well-formed but for one character reference to a surrogate, which XML 1.0 does not
# allow: feedparser falls back to its loose parser, which raises.
_SURROGATE_REFERENCE = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>a&#xd800;b</title>'
    b"<pubDate>Fri, 06 Dec 2024 14:32:00 +0100</pubDate></item></channel></rss>"
)


@examples(30)
@example(document=_SURROGATE_REFERENCE)
@given(document=_DAMAGED_FEEDS)
def test_a_bad_feed_is_reported_never_crashed_on(document: bytes, store_template: Path) -> None:
    """Any feed file ends as problems or a source error, never as an unexpected crash."""
    reports, _ = _cycle(store_template, files={}, feed=document)
    error = reports[1].error or ""
    assert not error.startswith("feed: unexpected"), error
