"""The message catalogs: complete, checked, compiled in memory, never silently empty."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog as PoCatalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from publisher.rendering import CatalogError, CatalogNotFound, load_catalog
from publisher.resources import bundled
from publisher.settings import Settings

LOCALES = bundled("locales")


def _read(path: Path, locale: str | None = None) -> PoCatalog:
    with path.open("rb") as fp:
        return read_po(fp, locale=locale)


def _po(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / "messages.po"


NINE = Settings().locales


def test_every_configured_locale_has_a_catalog() -> None:
    """The nine languages of the default settings each have their own catalog."""
    assert sorted(NINE) == ["ar", "de", "en", "es", "fr", "it", "ru", "tr", "uk"]
    for lang in NINE:
        assert not load_catalog(lang).fallback, lang


@pytest.mark.parametrize("lang", NINE)
def test_catalog_is_complete_and_current(lang: str) -> None:
    """Every message of ``messages.pot`` is translated, none fuzzy, placeholders intact."""
    template = _read(LOCALES / "messages.pot")
    catalog = _read(_po(lang), lang)
    wanted = {m.id for m in template if m.id}
    have = {m.id for m in catalog if m.id}
    assert wanted - have == set(), f"{lang}: not in the catalog, run pybabel update"
    untranslated = [
        m.id
        for m in catalog
        if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))
    ]
    assert untranslated == []
    assert [m.id for m in catalog if m.id and m.fuzzy] == []
    assert not catalog.fuzzy
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert problems == []


def test_catalogs_are_compiled_in_memory_not_committed() -> None:
    """No ``.mo`` file is needed (or committed): the ``.po`` is compiled on load."""
    assert list(LOCALES.rglob("*.mo")) == []
    catalog = load_catalog("ru")
    assert catalog.translations.gettext("Policing") == "Полицейская деятельность"
    assert not catalog.fallback
    assert load_catalog("ru") is catalog  # cached per (directory, locale)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "ru",
            ["0 новых публикаций", "1 новая публикация", "2 новые публикации",
             "5 новых публикаций", "11 новых публикаций", "21 новая публикация"],
        ),
        (
            "uk",
            ["0 нових публікацій", "1 нова публікація", "2 нові публікації",
             "5 нових публікацій", "11 нових публікацій", "21 нова публікація"],
        ),
        (
            "ar",
            ["0 خبر جديد", "1 خبر جديد", "2 خبران جديدان",
             "5 أخبار جديدة", "11 خبرًا جديدًا", "21 خبرًا جديدًا"],
        ),
    ],
)  # fmt: skip
def test_plural_forms_for_0_1_2_5_11_21(lang: str, expected: list[str]) -> None:
    """Russian and Ukrainian have three forms and Arabic six: each count gets its own."""
    t = load_catalog(lang, fallback=None).translations
    forms = [
        t.ngettext("%(num)d new item", "%(num)d new items", n) % {"num": n}
        for n in (0, 1, 2, 5, 11, 21)
    ]
    assert forms == expected


def test_russian_plural_forms_come_from_the_catalog() -> None:
    """Russian has three plural forms, chosen by the catalog's Plural-Forms rule."""
    t = load_catalog("ru").translations
    forms = [
        t.ngettext("%(num)d new item", "%(num)d new items", n) % {"num": n}
        for n in (1, 2, 5, 11, 12, 21, 22, 25, 101, 111)
    ]
    assert forms == [
        "1 новая публикация",
        "2 новые публикации",
        "5 новых публикаций",
        "11 новых публикаций",
        "12 новых публикаций",
        "21 новая публикация",
        "22 новые публикации",
        "25 новых публикаций",
        "101 новая публикация",
        "111 новых публикаций",
    ]


def test_missing_catalog_falls_back_to_english_explicitly() -> None:
    """A locale without a catalog gets the English words, and says so."""
    catalog = load_catalog("pt")
    assert catalog.fallback
    assert catalog.language == "en"
    assert str(catalog.locale) == "pt"
    assert catalog.translations.gettext("Unsubscribe") == "Unsubscribe"


def test_missing_catalog_is_an_error_without_fallback() -> None:
    """With ``fallback=None`` a missing catalog raises instead of rendering blank words."""
    with pytest.raises(CatalogNotFound, match=r"no catalog for locale 'pt'.*pt/LC_MESSAGES"):
        load_catalog("pt", fallback=None)
    with pytest.raises(CatalogNotFound, match="unknown locale"):
        load_catalog("xx_NOPE")


def test_missing_fallback_catalog_is_an_error(tmp_path: Path) -> None:
    """A locales directory without the fallback language's catalog is an error too."""
    with pytest.raises(CatalogNotFound, match="fallback catalog"):
        load_catalog("ru", tmp_path)


def test_regional_locale_uses_the_language_catalog(tmp_path: Path) -> None:
    """``pt_BR`` uses ``pt`` when there is no ``pt_BR`` catalog (an operator's directory)."""
    target = tmp_path / "pt" / "LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(_po("en"), target / "messages.po")
    catalog = load_catalog("pt_BR", tmp_path)
    assert catalog.language == "pt"
    assert not catalog.fallback


def test_broken_catalog_is_reported_with_its_path(tmp_path: Path) -> None:
    """An unreadable ``.po`` names its file."""
    target = tmp_path / "ru" / "LC_MESSAGES"
    target.mkdir(parents=True)
    (target / "messages.po").write_bytes(b'garbage\nmsgid "a"\nmsgstr "b"\n')
    with pytest.raises(CatalogError, match=r"ru/LC_MESSAGES/messages.po"):
        load_catalog("ru", tmp_path)


def test_the_template_holds_every_message_of_the_code_and_templates() -> None:
    """``messages.pot`` is current: extracting again finds no message it lacks or keeps."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "templates").is_dir():
        pytest.skip("needs the source tree, not an installed package")
    jinja = {"extensions": "jinja2.ext.i18n"}
    sources = [
        (
            root / "publisher",
            [("**.py", "python"), ("data/taxonomy.yaml", "publisher.taxonomy:extract_taxonomy")],
            {},
        ),
        (
            root / "templates",
            [("**.html", "jinja2"), ("**.txt", "jinja2")],
            {"**.html": jinja, "**.txt": jinja},
        ),
    ]
    fresh = {
        message[2]
        for directory, methods, options in sources
        for message in extract_from_dir(directory, methods, options)
    }
    fresh_ids = {m[0] if isinstance(m, tuple) else m for m in fresh}
    committed = {m.id for m in _read(LOCALES / "messages.pot") if m.id}
    committed_ids = {m[0] if isinstance(m, tuple) else m for m in committed}
    assert fresh_ids - committed_ids == set(), "new messages: run pybabel extract (README)"
    assert committed_ids - fresh_ids == set(), "messages no longer used: run pybabel extract"
