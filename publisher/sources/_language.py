"""Language tags as sources give them, and which translation names an item.

Translations are keyed by a primary language subtag ("en-US" → "en", RFC 5646 §2.2.1),
checked against Babel's CLDR data. When translations of one item come with their own
keys (a feed entry's id, a page's URL), the English one's key names the item, so the
key stays the same whatever order the source lists the translations in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from babel import Locale, UnknownLocaleError

DEFAULT_LANGUAGE = "en"
_SUBTAG = re.compile(r"[-_]")


def primary_language(tag: str | None) -> str | None:
    """The primary subtag of a language tag if Babel knows it: "en-US" → "en"."""
    if not tag:
        return None
    primary = _SUBTAG.split(tag.strip(), maxsplit=1)[0].lower()
    if not (primary.isascii() and primary.isalpha() and 2 <= len(primary) <= 3):
        return None
    try:
        Locale.parse(primary)
    except (UnknownLocaleError, ValueError):
        return None
    return primary


def pick_primary(candidates: Iterable[tuple[str, str]], preferred: str) -> tuple[str, str]:
    """Of (key, language) pairs, the one whose key names a group of translations: the
    English one, else the one in ``preferred``, else the smallest key. The same every
    run, whatever order the source lists them in."""
    pairs = sorted(candidates)
    for wanted in (DEFAULT_LANGUAGE, preferred):
        for pair in pairs:
            if pair[1] == wanted:
                return pair
    return pairs[0]
