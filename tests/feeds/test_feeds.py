"""The feeds of the sample content, read as feed readers read them.

Golden files under ``golden/`` mirror the feed URLs (``golden/ru/field/policing.atom``).
``PUBLISHER_UPDATE_GOLDEN=1 python -m pytest tests/feeds`` rewrites them (so does the
suite-wide ``UPDATE_GOLDEN=1`` of ``tests/rendering``); review the diff.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine

from publisher.feeds import BuiltFeed, FeedBuilder, FeedFormat, FeedSpec, UnknownFeed
from publisher.feeds.selection import SCAN_ITEMS, select_ids, select_items
from publisher.feeds.spec import standard_specs
from publisher.items import FetchedItem, Translation
from publisher.settings import Settings
from publisher.store.items import StoredItem, assign_entry_ids, load_items, save_items
from publisher.taxonomy import Taxonomy
from tests.feeds.atom_schema import validate_atom
from tests.feeds.conftest import (
    COLLECTED_AT,
    EDITED_AT,
    TASHKENT,
    Site,
    collect_at,
    edit_english,
    make_settings,
    parse_json_feed,
    parse_xml_feed,
)

GOLDEN = Path(__file__).parent / "golden"
ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
CYRILLIC = re.compile("[А-Яа-яЁё]")
# RFC 4151: "tag:" authority "," date ":" specific; ours name the item and the locale.
ENTRY_ID = re.compile(r"^tag:news\.example\.org,2026:item/(?P<item>[a-z0-9-]+)/(?P<locale>\w+)$")
BISHKEK = "2024-11-19-bishkek-youth-dialogue-forum"
ASHGABAT = "2025-02-12-ashgabat-water-management-seminar"  # in Russian only

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _xml(data: bytes) -> etree._Element:
    return etree.fromstring(data, _PARSER)


def _updating_golden() -> bool:
    return "1" in (os.environ.get("PUBLISHER_UPDATE_GOLDEN"), os.environ.get("UPDATE_GOLDEN"))


def _entry_id(item_id: str, locale: str) -> str:
    return f"tag:news.example.org,2026:item/{item_id}/{locale}"


def _atom_dates(data: bytes) -> dict[str, tuple[str, str]]:
    """Entry id → (published, updated), as the Atom document says."""
    return {
        entry.findtext(f"{ATOM}id", ""): (
            entry.findtext(f"{ATOM}published", ""),
            entry.findtext(f"{ATOM}updated", ""),
        )
        for entry in _xml(data).iter(f"{ATOM}entry")
    }


def _json_dates(data: bytes) -> dict[str, tuple[str, str]]:
    return {
        item["id"]: (item["date_published"], item["date_modified"])
        for item in parse_json_feed(data)["items"]
    }


def _rss_dates(data: bytes) -> dict[str, tuple[str, str]]:
    # RSS 2.0 has one date per item, pubDate: when it was published.
    return {
        item.findtext("guid", ""): (item.findtext("pubDate", ""), "")
        for item in _xml(data).iter("item")
    }


_DATES = {FeedFormat.ATOM: _atom_dates, FeedFormat.RSS: _rss_dates, FeedFormat.JSON: _json_dates}


def _matches(spec: FeedSpec, item: StoredItem) -> bool:
    """The rule of README "Who gets what", written out independently of the SQL."""
    fields = not spec.fields or bool(set(spec.fields) & set(item.fields_of_work))
    countries = (
        not spec.countries or not item.countries or bool(set(spec.countries) & set(item.countries))
    )
    return fields and countries


# -- every feed parses ------------------------------------------------------------------


def _json_entry_ids(data: bytes, path: str) -> list[str]:
    document = parse_json_feed(data)
    assert document["version"] == "https://jsonfeed.org/version/1.1", path
    assert document["home_page_url"] == "https://news.example.org/", path
    assert document["feed_url"] == f"https://news.example.org/feeds/{path}", path
    assert isinstance(document["title"], str) and document["title"], path
    assert isinstance(document["items"], list), path
    for item in document["items"]:
        assert isinstance(item["id"], str) and item["id"], path
        body = item.get("content_html", item.get("content_text"))
        assert isinstance(body, str), f"{path}: {item['id']} has no content_html or content_text"
    return [item["id"] for item in document["items"]]


def test_every_built_feed_parses(full_site: Site, taxonomy: Taxonomy) -> None:
    """Every file build_static writes for the sample (9 locales × all, each field of work,
    each country × Atom, RSS, JSON Feed 1.1) parses without bozo, every Atom file is valid
    RFC 4287, each links to the site and to itself, and the three formats of a feed hold
    the same entries in the same order."""
    builder = full_site.builder
    specs = list(standard_specs(taxonomy))
    assert len(builder.locales) == 9
    expected = {
        f"{locale}/{spec.path(fmt)}"
        for locale in builder.locales
        for spec in specs
        for fmt in FeedFormat
    } | {f"{locale}/feeds.opml" for locale in builder.locales}
    files = full_site.files()
    assert set(files) == expected
    for locale in builder.locales:
        for spec in specs:
            ids: dict[FeedFormat, list[str]] = {}
            for fmt in FeedFormat:
                path = f"{locale}/{spec.path(fmt)}"
                data = files[path]
                if fmt is FeedFormat.JSON:
                    ids[fmt] = _json_entry_ids(data, path)
                    continue
                if fmt is FeedFormat.ATOM:
                    try:
                        validate_atom(data)
                    except AssertionError as error:
                        raise AssertionError(f"{path}: {error}") from error
                parsed = parse_xml_feed(data)
                assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
                assert parsed.version == ("atom10" if fmt is FeedFormat.ATOM else "rss20"), path
                assert parsed.feed.title, path
                links = {link.rel: link.href for link in parsed.feed.links}
                assert parsed.feed.link == "https://news.example.org/", path  # the site
                assert links["self"] == builder.url(locale, spec, fmt), path
                ids[fmt] = [entry.id for entry in parsed.entries]
            atom, rss, json_feed = ids.values()
            assert atom == rss == json_feed, f"{locale}/{spec.key}: the formats disagree"


def test_opml_lists_each_standard_feed_once(full_site: Site, taxonomy: Taxonomy) -> None:
    """Each locale's feeds.opml is OPML 2.0 with one outline per standard feed: its Atom
    URL (a file that was built) and a label that ends that feed's title."""
    builder = full_site.builder
    files = full_site.files()
    for locale in builder.locales:
        root = _xml(files[f"{locale}/feeds.opml"])
        assert (root.tag, root.get("version")) == ("opml", "2.0")
        outlines = root.findall(".//outline[@xmlUrl]")
        urls = [outline.get("xmlUrl", "") for outline in outlines]
        wanted = [builder.url(locale, spec, FeedFormat.ATOM) for spec in standard_specs(taxonomy)]
        assert sorted(urls) == sorted(wanted)
        assert len(set(urls)) == len(urls)
        for outline, url in zip(outlines, urls, strict=True):
            path = url.removeprefix(builder.base)
            assert path.endswith(".atom") and path in files, url
            label = outline.get("text", "")
            title = _xml(files[path]).findtext(f"{ATOM}title", "")
            assert label and outline.get("title") == label and title.endswith(label), (url, label)
            assert outline.get("htmlUrl") == "https://news.example.org/"
    assert _xml(files["ru/feeds.opml"]).findtext("head/title") == "OSCE News: ленты новостей"


@pytest.mark.postgresql
def test_postgresql_builds_the_bytes_sqlite_builds(postgresql_site: Site, full_site: Site) -> None:
    """The en and ru feeds built from PostgreSQL (by a build of these two locales) are
    byte for byte those built from SQLite (by a build of every locale)."""
    built = postgresql_site.files()
    everything = full_site.files()
    assert set(built) == {path for path in everything if path.split("/")[0] in {"en", "ru"}}
    assert [path for path, data in built.items() if data != everything[path]] == []


# -- golden feeds -----------------------------------------------------------------------

GOLDEN_FEEDS = [("en", FeedSpec()), ("ru", FeedSpec()), ("ru", FeedSpec(fields=("policing",)))]


@pytest.mark.parametrize(
    ("locale", "spec"), GOLDEN_FEEDS, ids=[f"{locale}/{spec.key}" for locale, spec in GOLDEN_FEEDS]
)
def test_golden(site: Site, locale: str, spec: FeedSpec) -> None:
    """all in en and ru and field/policing in ru match their golden Atom, RSS and JSON
    byte for byte, as files and as FeedBuilder.build (the web app's path) makes them."""
    with site.engine.connect() as conn:
        for fmt in FeedFormat:
            relative = f"{locale}/{spec.path(fmt)}"
            written = (site.out / relative).read_bytes()
            assert site.builder.build(conn, locale, spec, fmt).data == written, relative
            path = GOLDEN / relative
            if _updating_golden():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(written)
            assert path.read_bytes() == written, f"{relative} differs from its golden file"


@pytest.mark.parametrize("locale", Settings().locales)
def test_golden_all_news_in_every_locale(full_site: Site, locale: str) -> None:
    """Each of the nine languages' all-news feed matches its golden Atom, RSS and JSON."""
    for fmt in FeedFormat:
        relative = f"{locale}/{FeedSpec().path(fmt)}"
        written = (full_site.out / relative).read_bytes()
        path = GOLDEN / relative
        if _updating_golden():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(written)
        assert path.read_bytes() == written, f"{relative} differs from its golden file"


FEED_TITLES = {"en": "OSCE News: all news", "ru": "OSCE News: все новости"}


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_entries_are_in_the_feed_language_or_say_theirs(site: Site, locale: str) -> None:
    """all.atom shows each item in the feed's language where it exists (xml:lang of the
    feed), else in English, else in its own language, marked with xml:lang; the feed
    title, categories and issuers are in the feed's language."""
    with site.engine.connect() as conn:
        items = {item.id: item for item in load_items(conn)}
    root = _xml((site.out / locale / "all.atom").read_bytes())
    assert root.get(XML_LANG) == locale
    assert root.findtext(f"{ATOM}title") == FEED_TITLES[locale]
    shown: Counter[str] = Counter()
    for entry in root.iter(f"{ATOM}entry"):
        match = ENTRY_ID.match(entry.findtext(f"{ATOM}id", ""))
        assert match is not None and match["locale"] == locale
        item = items[match["item"]]
        lang = next(
            lang for lang in (locale, "en", *sorted(item.translations)) if lang in item.translations
        )
        assert entry.get(XML_LANG) == lang, item.id
        assert entry.findtext(f"{ATOM}title") == item.translations[lang].title
        words = [c.get("label", "") for c in entry.iter(f"{ATOM}category")]
        words.append(entry.findtext(f"{ATOM}author/{ATOM}name", ""))
        assert all(bool(CYRILLIC.search(word)) == (locale == "ru") for word in words), words
        shown[lang] += 1
    assert sum(shown.values()) == len(items)
    if locale == "ru":
        assert shown["ru"] >= 8 and shown["en"] >= 8
        policing = root.find(f".//{ATOM}category[@term='policing']")
        assert policing is not None and policing.get("label") == "Полицейская деятельность"
    else:
        assert shown == {"en": len(items) - 1, "ru": 1}  # Ashgabat is in Russian only
        ashgabat = root.find(f"{ATOM}entry[{ATOM}id='{_entry_id(ASHGABAT, 'en')}']")
        assert ashgabat is not None and ashgabat.get(XML_LANG) == "ru"


# -- entries ----------------------------------------------------------------------------


def test_entry_ids_are_tag_uris_one_per_item_and_locale(site: Site) -> None:
    """Entry ids are tag: URIs (RFC 4151) naming the item and the feed's locale: every
    item once per feed, and the same item differs between locales by that suffix only."""
    with site.engine.connect() as conn:
        item_ids = sorted(item.id for item in load_items(conn))
    for locale in site.builder.locales:
        ids = [
            item["id"]
            for item in parse_json_feed((site.out / locale / "all.json").read_bytes())["items"]
        ]
        matches = [ENTRY_ID.match(entry_id) for entry_id in ids]
        assert all(matches), ids
        assert {m["locale"] for m in matches if m} == {locale}
        assert sorted(m["item"] for m in matches if m) == item_ids


def test_entry_ids_stay_when_the_tag_settings_change(site: Site) -> None:
    """An item keeps the entry id it was first given after feeds.tag_date changes; only the
    feed's own id follows the new setting."""
    feeds = site.settings.feeds.model_copy(update={"tag_date": "2030"})
    builder = FeedBuilder(
        site.settings.model_copy(update={"feeds": feeds}), taxonomy=site.builder.taxonomy
    )
    with site.engine.connect() as conn:
        data = builder.build(conn, "en", FeedSpec(), FeedFormat.ATOM).data
    before = _atom_dates((site.out / "en" / "all.atom").read_bytes())
    assert list(_atom_dates(data)) == list(before)
    assert _xml(data).findtext(f"{ATOM}id") == "tag:news.example.org,2030:feeds/en/all"


def test_published_and_updated_are_kept_apart(site: Site) -> None:
    """An item whose source gives a later `updated` (the Bishkek forum) keeps `published`
    as its publication time in every format; an item never updated has the two equal."""
    for locale in site.builder.locales:
        for fmt in FeedFormat:
            dates = _DATES[fmt]((site.out / locale / FeedSpec().path(fmt)).read_bytes())
            bishkek = dates.pop(_entry_id(BISHKEK, locale))
            if fmt is FeedFormat.RSS:
                assert bishkek == ("Tue, 19 Nov 2024 06:00:00 +0000", "")
                continue
            assert bishkek == ("2024-11-19T06:00:00+00:00", "2024-11-21T03:30:00+00:00")
            assert all(published == updated for published, updated in dates.values())


# The feeds the edit test builds: the first four show the Tashkent workshop. (Every
# standard feed is checked at the file level in test_static.py.)
EDIT_SPECS = (
    FeedSpec(),
    FeedSpec(fields=("policing",)),
    FeedSpec(countries=("UZ",)),
    FeedSpec.of(["policing"], ["KZ"]),
    FeedSpec(countries=("RS",)),
    FeedSpec.of(["policing"], ["RS"]),
)


def test_an_edit_of_the_english_text_moves_only_that_entry(
    collected: Engine, settings: Settings, builder: FeedBuilder, content_dir: Path
) -> None:
    """After an edit of an item's English text, the feeds showing that text (en, and fr,
    which falls back to English) give its entry a new `updated` and get a new ETag; its id
    and `published` stay and no other entry moves; feeds without the item keep their bytes
    and ETag, and so do the ru feeds, which show the item's Russian text."""

    def build_all() -> dict[tuple[str, FeedSpec, FeedFormat], BuiltFeed]:
        with collected.connect() as conn:
            return {
                (locale, spec, fmt): builder.build(conn, locale, spec, fmt)
                for locale in ("en", "fr", "ru")
                for spec in EDIT_SPECS
                for fmt in FeedFormat
            }

    before = build_all()
    edit_english(content_dir)
    collect_at(settings, collected, EDITED_AT)
    after = build_all()
    showing = {key for key, built in before.items() if TASHKENT in built.entry_ids}
    assert {spec for _, spec, _ in showing} == set(EDIT_SPECS[:4])
    for key, old in before.items():
        locale, _, fmt = key
        new = after[key]
        assert new.entry_ids == old.entry_ids, key
        if key not in showing or locale == "ru":
            assert (new.data, new.etag) == (old.data, old.etag), key
            continue
        assert new.data != old.data and new.etag != old.etag, key
        assert new.last_modified == EDITED_AT, key
        old_dates, new_dates = _DATES[fmt](old.data), _DATES[fmt](new.data)
        assert list(new_dates) == list(old_dates), key  # the same ids, in the same order
        edited = _entry_id(TASHKENT, locale)
        published, updated = new_dates.pop(edited)
        assert published == old_dates.pop(edited)[0]
        if fmt is not FeedFormat.RSS:
            assert (published, updated) == (
                "2024-12-06T11:30:00+00:00",
                "2025-03-08T12:00:00+00:00",
            )
        if fmt is FeedFormat.ATOM:  # the feed's own `updated`: its newest entry's
            assert _xml(new.data).findtext(f"{ATOM}updated") == "2025-03-08T12:00:00+00:00"
        assert new_dates == old_dates, key
    russian = _xml(after[("ru", FeedSpec(), FeedFormat.ATOM)].data)
    entry = russian.find(f"{ATOM}entry[{ATOM}id='{_entry_id(TASHKENT, 'ru')}']")
    assert entry is not None and entry.get(XML_LANG) == "ru"
    assert entry.findtext(f"{ATOM}updated") == "2024-12-06T11:30:00+00:00"


def test_regional_locales_are_written_as_bcp47_tags(
    engine: Engine, content_dir: Path, taxonomy: Taxonomy
) -> None:
    """A pt_BR feed and a pt_BR translation are tagged pt-BR (xml:lang, hreflang, RSS and
    JSON language; BCP 47 has no underscore), so the Atom stays valid in every locale."""
    settings = make_settings(content_dir, locales=["en", "pt_BR"])
    item = FetchedItem(
        key="brasilia-visit",
        published=datetime(2025, 2, 27, 12, 0, tzinfo=UTC),
        translations=(
            Translation("en", "A visit", "A visit.", "<p>A visit.</p>", "https://example.org/en/v"),
            Translation(
                "pt_BR", "Uma visita", "Visita.", "<p>Visita.</p>", "https://example.org/pt-br/v"
            ),
        ),
    )
    with engine.begin() as conn:
        save_items(conn, "wire", [item], now=COLLECTED_AT)
        assign_entry_ids(conn, settings.entry_id_prefix)
    builder = FeedBuilder(settings, taxonomy=taxonomy)
    with engine.connect() as conn:
        for locale, tag in (("en", "en"), ("pt_BR", "pt-BR")):
            atom = builder.build(conn, locale, FeedSpec(), FeedFormat.ATOM).data
            validate_atom(atom)
            root = _xml(atom)
            assert root.get(XML_LANG) == tag
            [entry] = root.iter(f"{ATOM}entry")
            assert entry.get(XML_LANG) == tag
            hreflangs = [link.get("hreflang") for link in entry.iter(f"{ATOM}link")]
            assert sorted(hreflangs) == ["en", "pt-BR"]
            rss = _xml(builder.build(conn, locale, FeedSpec(), FeedFormat.RSS).data)
            assert rss.findtext("channel/language") == tag
            assert rss.findtext(f"channel/item/{DC}language") == tag
            document = parse_json_feed(
                builder.build(conn, locale, FeedSpec(), FeedFormat.JSON).data
            )
            assert document["language"] == tag and document["items"][0]["language"] == tag


# -- hostile content --------------------------------------------------------------------

HOSTILE_TITLE = (
    "Breaking <script>alert(1)</script> news\r\nsecond line \x00nul \x0bvt \x1besc \ufffe end"
)
HOSTILE_SUMMARY = "A summary &lt;script&gt;alert(2)&lt;/script&gt; <img src=x onerror=alert(3)>"
HOSTILE_BODY = (
    '<p>Text <script>alert(4)</script><img src="https://www.example.org/a.png" onerror="alert(5)">'
    ' <a href="javascript:alert(6)">one</a> <a href="JaVaScRiPt:alert(7)">two</a>'
    ' <a href="java&#x09;script:alert(8)">three</a> <svg onload="alert(9)"></svg></p>'
    '<iframe src="javascript:alert(10)"></iframe><p onclick="alert(11)">\x00\x0b\x1b\ufffe</p>'
    '<style>p{}</style><object data="javascript:alert(12)"></object><p>Safe <b>end</b>.</p>'
)
LONG_URL = "https://www.example.org/en/news/long-report"
LONG_BODY = "".join(
    f"<p>Paragraph {n}: " + "the long report goes on and on, " * 30 + "</p>\n" for n in range(1100)
)
EXECUTABLE = re.compile(r"<script|javascript:|\bon[a-z]+\s*=|<iframe|<object|<style", re.I)
READ_MORE = {"en": "Read the full text", "ru": "Читать полностью"}


def _hostile_items(engine: Engine) -> list[FetchedItem]:
    # PostgreSQL text cannot hold NUL at all (the store refuses the item), so on it the
    # item carries every other control character but that one.
    nul = "" if engine.dialect.name == "postgresql" else "\x00"
    title, body = HOSTILE_TITLE.replace("\x00", nul), HOSTILE_BODY.replace("\x00", nul)
    return [
        FetchedItem(
            key="hostile",
            published=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
            translations=(
                Translation("en", title, HOSTILE_SUMMARY, body, "https://www.example.org/en/h"),
            ),
            fields_of_work=("policing",),
            countries=("UZ",),
        ),
        FetchedItem(
            key="long-report",
            published=datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
            translations=(Translation("en", "A long report", "Long.", LONG_BODY, LONG_URL),),
        ),
    ]


def _fields(data: bytes, fmt: FeedFormat) -> Iterator[tuple[str, str, bool, str]]:
    """(entry id, field, whether it is HTML, decoded value) for each text of each entry,
    with the type the format declares for it."""
    if fmt is FeedFormat.JSON:
        for item in parse_json_feed(data)["items"]:
            # JSON Feed 1.1: title and summary are plain text, content_html is HTML.
            yield item["id"], "title", False, item["title"]
            yield item["id"], "summary", False, item.get("summary", "")
            yield item["id"], "content", True, item["content_html"]
        return
    root = _xml(data)
    if fmt is FeedFormat.ATOM:
        for entry in root.iter(f"{ATOM}entry"):
            entry_id = entry.findtext(f"{ATOM}id", "")
            for name in ("title", "summary", "content"):
                element = entry.find(f"{ATOM}{name}")
                if element is not None:
                    kind = element.get("type", "text")
                    yield entry_id, name, kind != "text", element.text or ""
        return
    for item in root.iter("item"):
        entry_id = item.findtext("guid", "")
        # RSS 2.0: the title is text, description and content:encoded carry HTML.
        yield entry_id, "title", False, item.findtext("title", "")
        yield entry_id, "summary", True, item.findtext("description", "")
        yield entry_id, "content", True, item.findtext(CONTENT_ENCODED, "")


def test_hostile_content_stays_inert_and_long_content_is_cut(
    engine: Engine, builder: FeedBuilder, settings: Settings
) -> None:
    """An item with script, event handlers, javascript: URLs, CR LF and control characters,
    and a 1 MB item, still give feeds that parse (Atom valid); no HTML field of any format
    can run anything, titles are one clean line, and the long text is cut to about
    feeds.max_content with a link to the item in the feed's words for "Read the full text"."""
    with engine.begin() as conn:
        save_items(conn, "wire", _hostile_items(engine), now=COLLECTED_AT)
        assign_entry_ids(conn, settings.entry_id_prefix)
    limit = settings.feeds.max_content
    with engine.connect() as conn:
        for locale in ("en", "ru"):
            for fmt in FeedFormat:
                data = builder.build(conn, locale, FeedSpec(), fmt).data
                if fmt is not FeedFormat.JSON:
                    if fmt is FeedFormat.ATOM:
                        validate_atom(data)
                    parsed = parse_xml_feed(data)
                    assert not parsed.bozo, parsed.get("bozo_exception")
                    assert len(parsed.entries) == 2
                    for entry in parsed.entries:  # what a reader's parser hands on as HTML
                        details = [entry.title_detail, entry.summary_detail, *entry.content]
                        for detail in details:
                            if detail.type != "text/plain":
                                assert not EXECUTABLE.search(detail.value), (fmt, detail)
                seen = set()
                for entry_id, name, is_html, value in _fields(data, fmt):
                    seen.add(entry_id)
                    where = (locale, fmt, entry_id, name)
                    if is_html:
                        assert not EXECUTABLE.search(value), (where, value[:500])
                    if name == "title":
                        assert not re.search(r"[\x00-\x1f\x7f\ufffe]", value), where
                    if entry_id.endswith(f"/hostile/{locale}") and name == "title":
                        assert value == "Breaking alert(1) news second line nul vt esc end"
                    if entry_id.endswith(f"/long-report/{locale}") and name == "content":
                        more = f'<p><a href="{LONG_URL}">{READ_MORE[locale]}</a></p>'
                        assert value.endswith(more), (where, value[-200:])
                        assert 0.95 * limit <= len(value) - len(more) <= limit + 10, len(value)
                        assert value.count("<p>") == value.count("</p>")
                assert len(seen) == 2


# -- filters ----------------------------------------------------------------------------


def test_feed_spec_parsing(taxonomy: Taxonomy) -> None:
    """Slugs and country codes are checked, codes upper-cased, regions expanded and the
    filter put in canonical form; an unknown field of work or country is refused."""
    spec = FeedSpec.parse(
        ["policing", "elections", "policing"], ["uz", "central-asia", "MD"], taxonomy=taxonomy
    )
    assert spec == FeedSpec(("elections", "policing"), ("KG", "KZ", "MD", "TJ", "TM", "UZ"))
    assert not spec.is_standard
    assert spec.path(FeedFormat.JSON) == (
        "all.json?field=elections&field=policing"
        "&country=KG&country=KZ&country=MD&country=TJ&country=TM&country=UZ"
    )
    assert FeedSpec.parse([], ["central-asia"], taxonomy=taxonomy).countries == (
        "KG", "KZ", "TJ", "TM", "UZ",
    )  # fmt: skip
    assert FeedSpec.parse([], ["uz"], taxonomy=taxonomy).path(FeedFormat.ATOM) == "country/UZ.atom"
    assert FeedSpec.parse(["policing"], [], taxonomy=taxonomy).path(FeedFormat.RSS) == (
        "field/policing.rss"
    )
    assert FeedSpec.parse([], [], taxonomy=taxonomy).path(FeedFormat.ATOM) == "all.atom"
    for fields, countries in (
        (["policing", "astrology"], []),
        ([], ["atlantis"]),
        ([], ["XX"]),
        ([], ["UZ", ""]),
    ):
        with pytest.raises(UnknownFeed) as raised:
            FeedSpec.parse(fields, countries, taxonomy=taxonomy)
        assert isinstance(raised.value, LookupError)
        assert repr((fields + countries)[-1]) in str(raised.value)


def test_each_feed_holds_the_items_its_filter_names(site: Site, taxonomy: Taxonomy) -> None:
    """A country's feed holds the items naming that country plus those naming none, a
    field's feed the items of that field, a field and country feed (or a region's) the
    intersection; all newest first."""
    with site.engine.connect() as conn:
        everything = load_items(conn)
        specs = [
            *standard_specs(taxonomy),
            FeedSpec.of(["policing"], ["UZ"]),
            FeedSpec.of(["policing"], ["RS"]),
            FeedSpec.of(["policing"], ["IS"]),
            FeedSpec.of(["policing", "elections"], ["MD", "UZ"]),
            FeedSpec.parse(["environmental-activities"], ["central-asia"], taxonomy=taxonomy),
        ]
        selected = {spec: site.builder.select(conn, spec).ids for spec in specs}
    for spec, ids in selected.items():
        assert list(ids) == [item.id for item in everything if _matches(spec, item)], spec.key
    nowhere = {item.id for item in everything if not item.countries}
    assert len(nowhere) == 3 and set(selected[FeedSpec(countries=("IS",))]) == nowhere
    assert TASHKENT in selected[FeedSpec(countries=("UZ",))]
    both = FeedSpec.of(["policing"], ["RS"])
    field, country = FeedSpec(fields=("policing",)), FeedSpec(countries=("RS",))
    assert set(selected[both]) == set(selected[field]) & set(selected[country])
    assert selected[both] == ("2025-02-20-serbia-community-policing-prevention",)
    published = {item.id: item.published for item in everything}
    for ids in selected.values():
        assert [published[i] for i in ids] == sorted((published[i] for i in ids), reverse=True)


def test_feeds_selected_together_hold_what_each_selected_alone_holds(
    site: Site, taxonomy: Taxonomy
) -> None:
    """select_ids, one pass over the items for many feeds (a query each for the feeds the
    pass leaves not full when it stops early), gives each feed the ids select_items gives
    it, whatever the feed size and wherever the pass stops."""
    specs = [
        *standard_specs(taxonomy),
        FeedSpec.of(["policing"], ["UZ"]),
        FeedSpec.of(["policing", "elections"], ["MD", "UZ"]),
        FeedSpec.of(["elections", "policing"]),
        FeedSpec.of([], ["RS", "IS"]),
    ]
    with site.engine.connect() as conn:
        for limit in (1, 5, 50):
            alone = {spec: select_items(conn, spec, limit=limit).ids for spec in specs}
            for scan in (0, 1, 7, SCAN_ITEMS):
                together = select_ids(conn, specs, limit=limit, scan=scan)
                assert list(together) == specs
                assert together == alone, (limit, scan)


def test_a_feed_holds_at_most_the_newest_entries(site: Site) -> None:
    """With feeds.entries = 5 a feed holds its filter's five newest items, newest first."""
    feeds = site.settings.feeds.model_copy(update={"entries": 5})
    builder = FeedBuilder(
        site.settings.model_copy(update={"feeds": feeds}), taxonomy=site.builder.taxonomy
    )
    with site.engine.connect() as conn:
        everything = load_items(conn)
        for spec in (FeedSpec(), FeedSpec(countries=("KZ",))):
            wanted = sorted(
                (item for item in everything if _matches(spec, item)),
                key=lambda item: item.published,
                reverse=True,
            )
            assert len(wanted) > 5
            items = parse_json_feed(builder.build(conn, "en", spec, FeedFormat.JSON).data)["items"]
            assert [item["id"] for item in items] == [_entry_id(i.id, "en") for i in wanted[:5]]
            dates = [datetime.fromisoformat(item["date_published"]) for item in items]
            assert dates == sorted(dates, reverse=True)
