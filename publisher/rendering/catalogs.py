"""Message catalogs: ``locales/<lang>/LC_MESSAGES/messages.po`` compiled in memory.

Compiled ``.mo`` files are built, not committed (``locales/README.md``), so the ``.po``
is read with Babel and compiled into memory once per (directory, locale). Babel's own
``Translations.load`` hands back a ``NullTranslations`` for a missing catalog without a
word; here a missing catalog is either an error or an explicit, logged fallback.

Decision: a configured locale without a catalog (``pt``, say) falls back to the English
catalog *for the words only*; dates, country and language names, list patterns and the
text direction still come from CLDR in the subscriber's locale. The fallback is recorded
on the result (:attr:`Catalog.fallback`) and logged once. Pass ``fallback=None`` to make
a missing catalog an error instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import Translations

from publisher.errors import PublisherError
from publisher.resources import bundled

log = logging.getLogger(__name__)

DOMAIN = "messages"
FALLBACK_LANGUAGE = "en"


class CatalogError(PublisherError):
    """A catalog exists but cannot be read or compiled."""


class CatalogNotFound(PublisherError, LookupError):
    """No catalog for a locale, and no fallback was allowed (or it is missing too)."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """The translations used for a locale, and which catalog they really come from."""

    locale: Locale  # the locale asked for: formatting follows it
    language: str  # the catalog loaded: "ru", "pt", or FALLBACK_LANGUAGE
    translations: Translations

    @property
    def fallback(self) -> bool:
        """True when the words come from the fallback catalog, not the locale's own."""
        return self.language not in _candidates(self.locale)


def load_catalog(
    locale: Locale | str,
    directory: Path | None = None,
    *,
    fallback: str | None = FALLBACK_LANGUAGE,
) -> Catalog:
    """The catalog for ``locale`` from ``directory`` (default: the bundled ``locales``).

    ``pt_BR`` looks for ``pt_BR`` then ``pt``. Without either, the ``fallback`` language's
    catalog is used (logged) or, with ``fallback=None``, :class:`CatalogNotFound` is raised.
    """
    parsed = _parse(locale)
    root = (directory if directory is not None else bundled("locales")).resolve()
    return _load_cached(root, str(parsed), fallback)


@lru_cache(maxsize=256)
def _load_cached(root: Path, locale: str, fallback: str | None) -> Catalog:
    parsed = Locale.parse(locale)
    for candidate in _candidates(parsed):
        path = _po_path(root, candidate)
        if path.is_file():
            return Catalog(parsed, candidate, _compile(path, candidate))
    if fallback is None:
        raise CatalogNotFound(
            f"no catalog for locale {locale!r} in {root} "
            f"(looked for {', '.join(str(_po_path(root, c)) for c in _candidates(parsed))})"
        )
    path = _po_path(root, fallback)
    if not path.is_file():
        raise CatalogNotFound(
            f"no catalog for locale {locale!r} in {root}, "
            f"and the fallback catalog {path} is missing too"
        )
    log.warning(
        "no catalog for locale %r in %s: its messages are in %r until one is added",
        locale,
        root,
        fallback,
    )
    return Catalog(parsed, fallback, _compile(path, fallback))


def _candidates(locale: Locale) -> tuple[str, ...]:
    full = str(locale)
    return (full,) if full == locale.language else (full, locale.language)


def _po_path(root: Path, language: str) -> Path:
    return root / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _parse(locale: Locale | str) -> Locale:
    if isinstance(locale, Locale):
        return locale
    try:
        return Locale.parse(locale)
    except (UnknownLocaleError, ValueError) as exc:
        raise CatalogNotFound(f"unknown locale {locale!r}: {exc}") from exc


def _compile(path: Path, language: str) -> Translations:
    try:
        with path.open("rb") as fp:
            catalog = read_po(fp, locale=language, domain=DOMAIN, abort_invalid=True)
    except (OSError, ValueError, PoFileError) as exc:
        raise CatalogError(f"{path}: cannot read the catalog: {exc}") from exc
    buffer = BytesIO()
    # Fuzzy entries are left out, as msgfmt does: an unchecked guess is not a translation.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)
