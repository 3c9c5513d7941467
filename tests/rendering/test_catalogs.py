"""The message catalogs: complete, checked, compiled in memory, never silently empty."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog as PoCatalog
from babel.messages.pofile import read_po

from publisher.rendering import CatalogError, CatalogNotFound, load_catalog
from publisher.resources import bundled

LOCALES = bundled("locales")


def _read(path: Path, locale: str | None = None) -> PoCatalog:
    with path.open("rb") as fp:
        return read_po(fp, locale=locale)


def _po(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / "messages.po"


@pytest.mark.parametrize("lang", ["en", "ru", "fr", "de"])
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
