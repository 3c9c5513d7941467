"""Which translation of an item a subscriber reads, and whether it is in their language.

Languages are Babel locale identifiers (``en``, ``ru``, ``pt_BR``), as the sources store
them. A locale falls back to its parents by truncation, as CLDR's default inheritance
does (``pt_BR`` → ``pt``; CLDR's few explicit parent exceptions such as ``es_MX`` →
``es_419`` are not followed).
"""

from __future__ import annotations

from functools import lru_cache

from publisher.errors import PublisherError
from publisher.store.items import StoredItem, StoredTranslation
from publisher.subscriptions.model import Rule


class NoTranslationError(PublisherError):
    """An item has no translation at all: the store should never hold one."""


def choose_translation(
    item: StoredItem, rule: Rule, *, default_locale: str
) -> tuple[StoredTranslation, bool]:
    """The translation ``rule``'s subscribers read, and ``is_fallback``.

    The first of: the rule's locale (then its parents), each fallback locale (then its
    parents), the organisation's ``default_locale`` (then its parents), and finally the
    item's first translation, English first, then by language. ``is_fallback`` is false
    only for the rule's locale or one of its parents: ``pt`` is a ``pt_BR`` reader's own.
    """
    own, others = language_chain(rule.locale, rule.fallback_locales, default_locale)
    for lang in own:
        if (translation := item.translations.get(lang)) is not None:
            return translation, False
    for lang in others:
        if (translation := item.translations.get(lang)) is not None:
            return translation, True
    if not item.translations:
        raise NoTranslationError(f"item {item.id!r} has no translation")
    first = min(item.translations, key=lambda lang: (lang != "en", lang))
    return item.translations[first], True


@lru_cache(maxsize=1024)
def language_chain(
    locale: str, fallback_locales: tuple[str, ...], default_locale: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The languages to try: the reader's own, then the others, without repeats."""
    own = _with_parents(locale)
    others: list[str] = []
    for lang in (*fallback_locales, default_locale):
        others.extend(p for p in _with_parents(lang) if p not in own and p not in others)
    return own, tuple(others)


def _with_parents(locale: str) -> tuple[str, ...]:
    """``zh_Hant_TW`` → ``zh_Hant_TW``, ``zh_Hant``, ``zh``."""
    parts = locale.split("_")
    return tuple("_".join(parts[:n]) for n in range(len(parts), 0, -1))
