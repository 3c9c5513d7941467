"""The folder source: Markdown files with YAML front matter become items."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from publisher.errors import SourceError
from publisher.items import FetchedItem
from publisher.settings import FolderSourceSettings
from publisher.sources import Source, SourceResult
from publisher.sources.folder import FolderSource
from publisher.taxonomy import load_taxonomy

CONTENT = Path(__file__).resolve().parents[2] / "content"
GOOD = 'title: "A good item"\npublished: 2025-01-10T10:00:00+01:00\n'
UNSAFE = ("<script", "</script", "onerror", "onclick", "javascript:", "<style", "<iframe")


def make_source(path: Path) -> FolderSource:
    settings = FolderSourceSettings(name="newsroom", kind="folder", path=path)
    return FolderSource(settings, taxonomy=load_taxonomy())


def fetch(path: Path) -> SourceResult:
    return asyncio.run(make_source(path).fetch({}))


def write(folder: Path, name: str, front_matter: str, body: str = "Body text.\n") -> Path:
    path = folder / name
    path.write_text(f"---\n{front_matter}---\n\n{body}", encoding="utf-8")
    return path


def by_key(result: SourceResult) -> dict[str, FetchedItem]:
    return {item.key: item for item in result.items}


def only_item(tmp_path: Path) -> FetchedItem:
    result = fetch(tmp_path)
    assert result.problems == ()
    (item,) = result.items
    return item


# -- the shipped sample content ---------------------------------------------------------


def test_shipped_content_loads_without_problems() -> None:
    """Every file in content/ is valid and at least 14 items in six languages come out."""
    result = fetch(CONTENT)
    assert result.problems == ()
    assert len(result.items) >= 14
    languages = {t.lang for item in result.items for t in item.translations}
    assert {"en", "ru", "fr", "de", "uk", "ar"} <= languages
    assert any(item.countries == () for item in result.items)
    assert any(item.updated is not None and item.updated > item.published for item in result.items)


def test_shipped_tashkent_item() -> None:
    """The seed's item has its English and Russian text and the seed's tags."""
    item = by_key(fetch(CONTENT))["2024-12-06-tashkent-workshop"]
    assert [t.lang for t in item.translations] == ["en", "ru"]
    assert item.issuer == "transnational-threats-department"
    assert item.fields_of_work == ("policing",)
    assert item.countries == ("KZ", "KG", "TJ", "TM", "UZ")
    assert item.published == datetime(2024, 12, 6, 16, 30, tzinfo=timezone(timedelta(hours=5)))
    english, russian = item.translations
    assert english.title.startswith("OSCE regional workshop in Central Asia")
    assert english.body_html.count("<p>") == 6
    assert "Tashkent" in english.summary
    assert "Ташкенте" in russian.summary
    assert item.origin.endswith("2024-12-06-tashkent-workshop.en.md")


def test_shipped_russian_only_item() -> None:
    """One shipped item exists only in Russian: it is an item of its own, not dropped."""
    result = fetch(CONTENT)
    russian_only = [i for i in result.items if [t.lang for t in i.translations] == ["ru"]]
    assert [i.key for i in russian_only] == ["2025-02-12-ashgabat-water-management-seminar"]


def test_shipped_bodies_are_sanitized() -> None:
    """No shipped body carries script, style, event handlers or javascript: URLs."""
    for item in fetch(CONTENT).items:
        for translation in item.translations:
            assert translation.body_html.startswith("<p>")
            assert not any(bad in translation.body_html.lower() for bad in UNSAFE)


# -- one file and its translations --------------------------------------------------------


def test_markdown_body_is_sanitized(tmp_path: Path) -> None:
    """Raw HTML and links in the Markdown body cannot smuggle in script."""
    body = (
        "Intro <script>alert(1)</script> text.\n\n"
        '<img src="x.png" onerror="alert(1)">\n\n'
        "[click](javascript:alert(1)) and <a href=\"javascript:alert('x')\">this</a>\n"
    )
    write(tmp_path, "item.en.md", GOOD, body)
    html = only_item(tmp_path).translations[0].body_html
    assert "<script" not in html
    assert "alert(1)</" not in html
    assert "onerror" not in html
    assert "href" not in html  # markdown-it refuses the link, nh3 drops the attribute
    assert '<img src="x.png">' in html
    assert "<p>Intro  text.</p>" in html


def test_translations_are_grouped_english_first(tmp_path: Path) -> None:
    """NAME.LANG.md files of one base name form one item; pt-BR is spelled pt_BR."""
    for lang in ("ru", "pt-BR", "en", "fr"):
        write(tmp_path, f"item.{lang}.md", GOOD)
    item = only_item(tmp_path)
    assert item.key == "item"
    assert [t.lang for t in item.translations] == ["en", "fr", "pt_BR", "ru"]
    assert item.origin == str(tmp_path / "item.en.md")


def test_files_are_read_recursively(tmp_path: Path) -> None:
    """Files in sub-folders count; hidden folders do not."""
    (tmp_path / "2025" / "01").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    write(tmp_path / "2025" / "01", "deep.en.md", GOOD)
    (tmp_path / ".git" / "ignored.md").write_text("not content", encoding="utf-8")
    assert only_item(tmp_path).key == "deep"


def test_id_from_front_matter_is_the_key_for_every_translation(tmp_path: Path) -> None:
    """The front matter's id is the key; a sibling without id takes it too."""
    write(tmp_path, "2025-01-10-item.en.md", "id: stable-id\n" + GOOD)
    write(tmp_path, "2025-01-10-item.ru.md", GOOD)
    item = only_item(tmp_path)
    assert item.key == "stable-id"
    assert [t.lang for t in item.translations] == ["en", "ru"]


def test_summary_falls_back_to_the_body(tmp_path: Path) -> None:
    """Without a summary, the start of the body is the summary, as plain text."""
    write(tmp_path, "item.en.md", GOOD, "First **bold** paragraph.\n\nSecond.\n")
    assert only_item(tmp_path).translations[0].summary == "First bold paragraph. Second."


def test_title_with_crlf_and_control_characters_is_one_clean_line(tmp_path: Path) -> None:
    """CRLF line endings and control characters in a title give one clean line."""
    text = (
        "---\r\n"
        'title: "Workshop\\r\\n\\tin\\x07 Tashkent\\x1b <b>today</b>"\r\n'
        "published: 2025-01-10T10:00:00+01:00\r\n"
        "---\r\n"
        "\r\n"
        "Body.\r\n"
    )
    (tmp_path / "item.en.md").write_bytes(text.encode())
    translation = only_item(tmp_path).translations[0]
    assert translation.title == "Workshop in Tashkent today"
    assert translation.body_html == "<p>Body.</p>\n"


def test_region_names_expand_to_their_countries(tmp_path: Path) -> None:
    """A region name stands for its countries, in order, without duplicates."""
    write(tmp_path, "item.en.md", GOOD + "countries: [UZ, central-asia, GE]\n")
    assert only_item(tmp_path).countries == ("UZ", "KZ", "KG", "TJ", "TM", "GE")


def test_no_is_norway_not_false(tmp_path: Path) -> None:
    """YAML 1.1 booleans and sexagesimals stay the text that was written."""
    front_matter = (
        "id: 1:20\ntitle: yes\npublished: 2025-01-10T10:00:00Z\n"
        "countries: [NO, no, Norway]\nfields_of_work: Policing\n"
    )
    write(tmp_path, "item.en.md", front_matter)
    item = only_item(tmp_path)
    assert item.countries == ("NO",)
    assert item.key == "1:20"
    assert item.translations[0].title == "yes"
    assert item.fields_of_work == ("policing",)
    assert item.published == datetime(2025, 1, 10, 10, tzinfo=UTC)


def test_issuer_label_is_accepted(tmp_path: Path) -> None:
    """An issuer may be given by its slug or its seed-style "Parent, Child" name."""
    issuer = "issuer: OSCE Secretariat, Transnational Threats Department\n"
    write(tmp_path, "item.en.md", GOOD + issuer)
    assert only_item(tmp_path).issuer == "transnational-threats-department"


# -- problems ----------------------------------------------------------------------------

BROKEN = [
    pytest.param(
        "bad.en.md",
        "---\ntitle: a: b\npublished: 2025-01-10T10:00:00+01:00\n---\n",
        "{path}:2:9: invalid YAML front matter: mapping values are not allowed here",
        id="bad-yaml",
    ),
    pytest.param(
        "bad.en.md",
        "---\ntitle: [unclosed\n---\n",
        "{path}:3:1: invalid YAML front matter: expected ',' or ']', but got '<stream end>'",
        id="unclosed-flow",
    ),
    pytest.param(
        "bad.en.md",
        "Just a body, no front matter.\n",
        "{path}:1:1: no YAML front matter; expected the file to start with a '---' line, "
        "the front matter, and a closing '---' line",
        id="no-front-matter",
    ),
    pytest.param(
        "bad.en.md",
        "---\ntitle: Never closed\n",
        "{path}:1:1: no YAML front matter; expected the file to start with a '---' line, "
        "the front matter, and a closing '---' line",
        id="unclosed-front-matter",
    ),
    pytest.param(
        "bad.en.md",
        "---\npublished: 2025-01-10T10:00:00+01:00\n---\n",
        "{path}: no 'title' in the front matter; expected 'title: …'",
        id="missing-title",
    ),
    pytest.param(
        "bad.en.md",
        '---\ntitle: "<b></b>"\npublished: 2025-01-10T10:00:00+01:00\n---\n',
        "{path}:2:8: the title is empty; expected the item's title",
        id="empty-title",
    ),
    pytest.param(
        "bad.en.md",
        "---\ntitle: T\n---\n",
        "{path}: no 'published' in the front matter; expected 'published: …'",
        id="missing-date",
    ),
    pytest.param(
        "bad.en.md",
        "---\ntitle: T\npublished: 2025-01-10T10:00:00\n---\n",
        "{path}:3:12: published '2025-01-10T10:00:00' has no UTC offset; "
        "expected one such as 2024-12-06T10:00:00+05:00",
        id="naive-date",
    ),
    pytest.param(
        "bad.en.md",
        "---\ntitle: T\npublished: 10 January 2025\n---\n",
        "{path}:3:12: published '10 January 2025' is not an ISO 8601 date and time; "
        "expected one with a UTC offset, such as 2024-12-06T10:00:00+05:00",
        id="not-a-date",
    ),
    pytest.param(
        "bad.en.md",
        "---\ntitle: T\npublished: 2025-01-10T10:00:00+01:00\n"
        "updated: 2025-01-09T10:00:00+01:00\n---\n",
        "{path}:4:10: updated 2025-01-09T10:00:00+01:00 is earlier than published "
        "2025-01-10T10:00:00+01:00; expected a later time or no 'updated'",
        id="updated-before-published",
    ),
    pytest.param(
        "bad.en.md",
        f"---\n{GOOD}fields_of_work: [policing, human-rigths]\n---\n",
        "{path}:4:28: unknown field of work 'human-rigths'; expected a field-of-work slug; "
        "did you mean 'human-rights'?",
        id="unknown-field",
    ),
    pytest.param(
        "bad.en.md",
        f"---\n{GOOD}countries:\n  - UZ\n  - XX\n---\n",
        "{path}:6:5: unknown country or region 'XX'; expected an ISO 3166-1 alpha-2 code "
        "or a region name such as 'central-asia'",
        id="unknown-country",
    ),
    pytest.param(
        "bad.en.md",
        f"---\n{GOOD}issuer: mission-to-moldva\n---\n",
        "{path}:4:9: unknown issuer 'mission-to-moldva'; expected an issuer slug; "
        "did you mean 'mission-to-moldova'?",
        id="unknown-issuer",
    ),
    pytest.param(
        "bad.en.md",
        f"---\n{GOOD}field_of_work: [policing]\n---\n",
        "{path}:4:1: unknown key 'field_of_work'; expected one of id, title, published, "
        "updated, issuer, fields_of_work, countries, summary",
        id="unknown-key",
    ),
    pytest.param(
        "bad.en.md",
        f"---\n{GOOD}countries: {{UZ: 1}}\n---\n",
        "{path}:4:12: 'countries' is a mapping; expected a list",
        id="countries-not-a-list",
    ),
    pytest.param(
        "bad.md",
        f"---\n{GOOD}---\n",
        "{path}: expected NAME.LANG.md, a language such as en, ru or pt_BR before .md",
        id="no-language",
    ),
    pytest.param(
        "bad.xx.md",
        f"---\n{GOOD}---\n",
        "{path}: 'xx' is not a language Babel knows; expected NAME.LANG.md, "
        "a language such as en, ru or pt_BR before .md",
        id="unknown-language",
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), BROKEN)
def test_broken_file_is_one_precise_problem(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    """A broken file is skipped with one path:line:column line; other files still load."""
    write(tmp_path, "good.en.md", GOOD)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = fetch(tmp_path)
    assert result.problems == (expected.format(path=path),)
    assert [item.key for item in result.items] == ["good"]


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    """A file with several mistakes lists them all at once, in file order."""
    path = write(tmp_path, "item.en.md", "countries: [XX, YY]\npublished: 2025-01-10\n")
    result = fetch(tmp_path)
    assert result.items == ()
    assert [p.split(": ", 1)[0] for p in result.problems] == [
        str(path),  # no title: a problem without a position comes first
        f"{path}:2:13",
        f"{path}:2:17",
        f"{path}:3:12",
    ]


def test_not_utf8_is_a_problem(tmp_path: Path) -> None:
    """A file that is not UTF-8 is reported, not a crash."""
    path = tmp_path / "item.en.md"
    path.write_bytes(b"---\ntitle: caf\xe9\n---\n")
    assert fetch(tmp_path).problems == (
        f"{path}: not UTF-8 text (byte 14); expected a UTF-8 Markdown file",
    )


def test_translations_that_disagree_are_reported(tmp_path: Path) -> None:
    """English speaks for the item; a translation stating other tags is reported, kept."""
    write(tmp_path, "item.en.md", GOOD + "issuer: mission-to-moldova\ncountries: [MD]\n")
    ru = write(
        tmp_path,
        "item.ru.md",
        'title: "Т"\npublished: 2025-01-10T13:00:00+04:00\nissuer: mission-to-serbia\n'
        "countries: [MD]\n",
    )
    result = fetch(tmp_path)
    assert result.problems == (
        f"{ru}:4:9: issuer 'mission-to-serbia' differs from 'mission-to-moldova' in "
        f"{tmp_path / 'item.en.md'}, which is used",
    )
    (item,) = result.items
    assert item.issuer == "mission-to-moldova"
    assert [t.lang for t in item.translations] == ["en", "ru"]


def test_translation_without_shared_tags_inherits_them(tmp_path: Path) -> None:
    """A translation that leaves out the tags is not a disagreement."""
    write(tmp_path, "item.en.md", GOOD + "countries: [central-asia]\n")
    write(tmp_path, "item.de.md", GOOD.replace("+01:00", "+00:00").replace("10:00", "09:00"))
    write(tmp_path, "item.ru.md", GOOD + "countries: [KZ, KG, TJ, TM, UZ]\n")
    item = only_item(tmp_path)
    assert [t.lang for t in item.translations] == ["en", "de", "ru"]


def test_two_files_for_one_language_are_reported(tmp_path: Path) -> None:
    """Two files giving the same item in the same language: the second is skipped."""
    first = write(tmp_path, "a.en.md", "id: same\n" + GOOD)
    second = write(tmp_path, "b.en.md", "id: same\n" + GOOD)
    result = fetch(tmp_path)
    assert result.problems == (
        f"{second}: a second 'en' translation of item 'same'; "
        f"expected one file per language (the first is {first})",
    )
    assert [item.key for item in result.items] == ["same"]


def test_siblings_with_different_ids_are_reported(tmp_path: Path) -> None:
    """Translations of one file name must not give two different ids."""
    write(tmp_path, "item.en.md", "id: one\n" + GOOD)
    ru = write(tmp_path, "item.ru.md", "id: two\n" + GOOD)
    result = fetch(tmp_path)
    assert result.problems == (
        f"{ru}:2:5: id 'two' differs from 'one' in {tmp_path / 'item.en.md'}; "
        "expected the translations of one item to share one id",
    )
    assert [item.key for item in result.items] == ["one"]


# -- the source as a whole ----------------------------------------------------------------


def test_folder_source_is_a_source(tmp_path: Path) -> None:
    """FolderSource satisfies the Source protocol and keeps no state between runs."""
    source: Source = make_source(tmp_path)
    assert source.name == "newsroom"
    result = asyncio.run(source.fetch({"etag": "ignored"}))
    assert result == SourceResult(items=())


def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    """A folder that does not exist fails the whole source, naming it."""
    with pytest.raises(SourceError, match=r"source 'newsroom': .*missing is not a folder"):
        fetch(tmp_path / "missing")
