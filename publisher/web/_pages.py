"""The web pages' Jinja2 environments, one per available language, and the choice of one.

Only languages with a catalog in ``locales/`` are offered, besides the language the
templates are written in: a page never claims ``lang="ru"`` while showing English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from gettext import NullTranslations
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from publisher.rendering.catalogs import CatalogNotFound, load_catalog

# The language of the msgids in the templates.
SOURCE_LOCALE = "en"
# Accept-Language entries considered; a longer header is cut, not refused.
_MAX_LANGUAGES = 20
_LANGUAGE_RANGE = re.compile(
    r"^\s*([A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q=([0-9.]{1,5}))?"
)


def load_translations(locale: str) -> NullTranslations | None:
    """The compiled catalog for ``locale``, or ``None`` when there is none."""
    try:
        return load_catalog(locale, fallback=None).translations
    except CatalogNotFound:
        return None


def create_environment(
    search_path: Sequence[Path], translations: NullTranslations | None = None
) -> Environment:
    """An autoescaping environment over ``search_path`` (first match wins), gettext installed."""
    env = Environment(
        loader=FileSystemLoader(list(search_path)),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    if translations is None:
        env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    else:
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return env


def text_direction(locale: str) -> str:
    """``rtl`` for right-to-left scripts (Arabic, Hebrew, …), else ``ltr``."""
    try:
        order = Locale.parse(locale, sep="-" if "-" in locale else "_").character_order
    except (UnknownLocaleError, ValueError):
        return "ltr"
    return "rtl" if order == "right-to-left" else "ltr"


def preferred_languages(header: str) -> list[str]:
    """The language ranges of an ``Accept-Language`` header (RFC 9110 §12.5.4), best first.

    Malformed entries are skipped, never an error.
    """
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:_MAX_LANGUAGES]):
        match = _LANGUAGE_RANGE.match(part)
        if match is None:
            continue
        try:
            quality = float(match[2]) if match[2] else 1.0
        except ValueError:
            continue
        if 0 < quality <= 1:
            ranked.append((-quality, position, match[1].replace("_", "-").lower()))
    return [language for _, _, language in sorted(ranked)]


class Pages:
    """Renders the web templates in the best available language for a request."""

    def __init__(
        self,
        search_path: Sequence[Path],
        *,
        locales: Iterable[str],
        default_locale: str,
        common: Mapping[str, Any] | None = None,
    ) -> None:
        self._common = dict(common or {})  # given to every page, e.g. the list's name
        self._environments: dict[str, Environment] = {}
        for locale in dict.fromkeys([default_locale, *locales, SOURCE_LOCALE]):
            translations = load_translations(locale)
            if translations is not None or locale == SOURCE_LOCALE:
                self._environments[locale] = create_environment(search_path, translations)
        self._default = default_locale if default_locale in self._environments else SOURCE_LOCALE

    def check(self, names: Iterable[str]) -> None:
        """Compile the templates ``names`` now, so that a missing one fails at start."""
        for env in self._environments.values():
            for name in names:
                env.get_template(name)

    @property
    def locales(self) -> list[str]:
        return list(self._environments)

    def choose(self, locale: str | None, accept_language: str | None) -> str:
        """``locale`` (a subscriber's) when there is a page for it or its language,
        else the best match for ``Accept-Language``."""
        if locale is not None:
            if locale in self._environments:
                return locale
            language = locale.split("_")[0]
            if language in self._environments:
                return language
        return self.negotiate(accept_language)

    def negotiate(self, accept_language: str | None) -> str:
        """The available locale that best matches the ``Accept-Language`` header."""
        by_lower = {locale.replace("_", "-").lower(): locale for locale in self._environments}
        for wanted in preferred_languages(accept_language or ""):
            if wanted in by_lower:
                return by_lower[wanted]
            primary = wanted.split("-")[0]
            if primary in by_lower:
                return by_lower[primary]
        return self._default

    def render(self, name: str, locale: str, context: Mapping[str, Any]) -> str:
        template = self._environments[locale].get_template(name)
        lang = locale.replace("_", "-")
        return template.render(
            {**self._common, **context, "lang": lang, "dir": text_direction(locale)}
        )
