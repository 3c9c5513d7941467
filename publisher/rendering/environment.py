"""Jinja2 environments: one per (templates directory, locale), built once.

Each environment has the locale's catalog installed (``jinja2.ext.i18n``, new-style
gettext, so ``_("… %(x)s", x=…)`` escapes its arguments and plural forms come from the
catalog) and filters bound to that locale. Time zones vary per subscriber, not per
locale, so filters that show a moment take the zone as an explicit argument:
``{{ item.published|moment(tz) }}``.

Autoescaping is on for everything except ``.txt`` templates: the plain-text part is
text, where ``&`` is an ampersand, not ``&amp;``. ``StrictUndefined`` turns a misspelt
name into an error instead of an empty string.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache, partial
from pathlib import Path
from threading import Lock

from babel import Locale
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.filters import do_wordwrap

from publisher.rendering import formatting
from publisher.rendering.catalogs import FALLBACK_LANGUAGE, Catalog, load_catalog
from publisher.resources import bundled
from publisher.taxonomy import Taxonomy


class Environments:
    """The environments for one templates directory, one catalog directory, one taxonomy."""

    def __init__(
        self,
        *,
        taxonomy: Taxonomy,
        templates: Path | None = None,
        locales: Path | None = None,
        fallback: str | None = FALLBACK_LANGUAGE,
    ) -> None:
        self.taxonomy = taxonomy
        self.templates = (templates if templates is not None else bundled("templates")).resolve()
        self.locales = (locales if locales is not None else bundled("locales")).resolve()
        self.fallback = fallback
        self._built: dict[str, Environment] = {}
        self._catalogs: dict[str, Catalog] = {}
        self._lock = Lock()

    def catalog(self, locale: Locale | str) -> Catalog:
        """The catalog for ``locale``, loaded once (resolving paths costs system calls)."""
        key = str(locale)
        catalog = self._catalogs.get(key)
        if catalog is None:
            catalog = load_catalog(locale, self.locales, fallback=self.fallback)
            self._catalogs[key] = catalog  # a race only loads one twice
        return catalog

    def get(self, locale: Locale | str) -> Environment:
        """The environment for ``locale``, built on first use."""
        key = str(locale)
        env = self._built.get(key)
        if env is None:
            with self._lock:
                env = self._built.get(key)
                if env is None:
                    env = self._build(self.catalog(locale))
                    self._built[key] = env
        return env

    def _build(self, catalog: Catalog) -> Environment:
        env = Environment(
            loader=FileSystemLoader(self.templates),
            autoescape=select_autoescape(
                enabled_extensions=("html", "htm", "xml"),
                disabled_extensions=("txt",),
                default_for_string=True,
                default=True,
            ),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # templates are read once; a deployment restarts to change them
        )
        env.install_gettext_translations(catalog.translations, newstyle=True)  # type: ignore[attr-defined]
        locale = catalog.locale
        taxonomy = self.taxonomy
        env.filters.update(
            wordwrap=_cached_wordwrap(env),
            moment=lambda value, tz, context="item": (
                tz.mark(value, context)
                if isinstance(tz, DeferredZone)
                else formatting.format_moment(value, locale=locale, tz=tz, context=context)
            ),
            period=lambda start, end, tz: formatting.format_period(
                start, end, locale=locale, tz=tz
            ),
            field_of_work=partial(
                formatting.field_of_work_label, taxonomy=taxonomy, catalog=catalog
            ),
            fields_of_work=lambda slugs: formatting.format_names(
                (
                    formatting.field_of_work_label(s, taxonomy=taxonomy, catalog=catalog)
                    for s in slugs
                ),
                locale=locale,
            ),
            issuer=partial(formatting.issuer_label, taxonomy=taxonomy, catalog=catalog),
            countries=lambda codes: formatting.format_names(
                (formatting.country_name(c, taxonomy=taxonomy, catalog=catalog) for c in codes),
                locale=locale,
            ),
            language_name=lambda lang: Locale.parse(lang).get_display_name(locale) or lang,
            names=partial(formatting.format_names, locale=locale),
        )
        env.globals.update(
            locale_tag=str(locale).replace("_", "-"),
            text_direction=locale.text_direction,
        )
        return env


class DeferredZone:
    """Stands for the reader's zone when one rendering serves every zone.

    Each moment a template shows with ``moment(tz)`` becomes ``prefix`` + its number +
    ``%%`` and is remembered in :attr:`moments`, for the caller to fill in per zone.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.moments: list[tuple[datetime, formatting.DateContext]] = []

    def mark(self, value: datetime, context: formatting.DateContext) -> str:
        self.moments.append((value, context))
        return f"{self.prefix}{len(self.moments) - 1}%%"


def _cached_wordwrap(env: Environment) -> Callable[..., str]:
    """Jinja's ``wordwrap``, remembering its answers: the same paragraphs and footer
    lines are wrapped for every rule and zone, and textwrap is slow."""

    @lru_cache(maxsize=8192)
    def wrapped(
        kind: type, text: str, width: int, long_words: bool, wrap: str | None, hyphens: bool
    ) -> str:
        return do_wordwrap(env, text, width, long_words, wrap, hyphens)

    def wordwrap(
        s: str,
        width: int = 79,
        break_long_words: bool = True,
        wrapstring: str | None = None,
        break_on_hyphens: bool = True,
    ) -> str:
        # The type is part of the key: Markup("a") == "a", but the two wrap differently.
        return wrapped(type(s), s, width, break_long_words, wrapstring, break_on_hyphens)

    return wordwrap
