"""Publication dates as news pages write them, read into aware UTC datetimes.

Month names come from CLDR through Babel, in English and in the page's language, so a
new language needs no code; the process locale is never used. A date without a time of
day is taken as 12:00 UTC, so that it shows as the same calendar day in nearly every
time zone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache

from babel import Locale

_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_DOTTED_DATE = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b")
_DAY_MONTH_YEAR = re.compile(r"\b(\d{1,2})\.?\s+([^\W\d_]+)\.?,?\s+(\d{4})\b")
_MONTH_DAY_YEAR = re.compile(r"\b([^\W\d_]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")


def parse_issued_date(text: str, lang: str = "en") -> datetime | None:
    """A publication date from a page's text, as an aware datetime; ``None`` if unread.

    Accepted: ISO 8601 dates and date-times ("2024-12-06", "2024-12-06T10:00:00+01:00";
    no offset means UTC); "6 December 2024" and "December 6, 2024" with month names,
    full or abbreviated, in English or in ``lang`` (from CLDR: "6 декабря 2024 г.",
    "6. Dez. 2024"); and "06.12.2024". A date alone is taken as 12:00 UTC.
    """
    text = " ".join(text.split())
    if (iso := _ISO_DATE.search(text)) is not None:
        try:
            value = datetime.fromisoformat(iso[0].replace(",", "."))
        except ValueError:
            return None
        if len(iso[0]) == 10:
            value = value.replace(hour=12)
        # In UTC, so that one instant always hashes the same (FetchedItem.item_hash).
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    months = _month_names(lang)
    parts: tuple[str, str, str] | None = None
    if (m := _DOTTED_DATE.search(text)) is not None:
        parts = (m[1], m[2], m[3])
    elif (m := _DAY_MONTH_YEAR.search(text)) and m[2].casefold() in months:
        parts = (m[1], str(months[m[2].casefold()]), m[3])
    elif (m := _MONTH_DAY_YEAR.search(text)) and m[1].casefold() in months:
        parts = (m[2], str(months[m[1].casefold()]), m[3])
    if parts is None:
        return None
    try:
        return datetime(int(parts[2]), int(parts[1]), int(parts[0]), 12, tzinfo=UTC)
    except ValueError:
        return None


@cache
def _month_names(lang: str) -> Mapping[str, int]:
    names: dict[str, int] = {}
    for code in dict.fromkeys(("en", lang)):
        try:
            months = Locale.parse(code).months
        except ValueError:
            continue
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for number, name in months[context][width].items():
                    names.setdefault(name.casefold().rstrip("."), number)
    return names
