"""The metadata block of an article page: label texts and the values they introduce.

News pages show "Issued on:", "Issued by:", "Fields of work:" and "Countries:" as
labels, in the page's language, each followed by its values. Which elements are
labels and values, and which texts name which label, come from the settings
(:class:`~publisher.settings.HtmlSelectors`, :class:`~publisher.settings.HtmlLabels`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml.cssselect import CSSSelector

from publisher.cleaning import clean_text
from publisher.settings import HtmlLabels
from publisher.sources._dates import parse_issued_date

_LIST_SEPARATORS = re.compile(r"[,;]")
_NAMES = ("issued_on", "issued_by", "fields_of_work", "countries")


@dataclass(frozen=True, slots=True)
class Meta:
    """A metadata value: its elements (none for text after the label), and its text."""

    elements: tuple[Any, ...]
    text: str

    def parts(self) -> list[str]:
        """The names in a list value: links or list items, else the text split at commas."""
        raw: list[str] = [] if self.elements else _LIST_SEPARATORS.split(self.text)
        for element in self.elements:
            if named := element.xpath(".//li | .//a"):
                raw.extend(e.text_content() for e in named)
            else:
                raw.extend(_LIST_SEPARATORS.split(element.text_content()))
        return [text for part in raw if (text := clean_text(part))]

    def date(self, lang: str) -> datetime | None:
        """The date given: a ``<time datetime>`` in the value first, else its text."""
        for element in self.elements:
            for time in element.xpath("descendant-or-self::time[@datetime]"):
                if (value := parse_issued_date(time.get("datetime"), lang)) is not None:
                    return value
        return parse_issued_date(self.text, lang)


class MetadataReader:
    """Finds the labels of the settings in a page and reads their values."""

    def __init__(self, labels: HtmlLabels, *, label: CSSSelector, value: CSSSelector) -> None:
        self._label = label
        self._value = value
        self._names = {_label_key(text): name for name in _NAMES for text in getattr(labels, name)}

    def read(self, doc: Any) -> dict[str, Meta]:
        """Label → value for the labels of the settings, first occurrence wins.

        A label's values are the following siblings that match ``meta_value``, up to
        the next label; when there are none, the text after the label itself
        (``<p><b>Issued on:</b> 6 December 2024</p>``).
        """
        labels = self._label(doc)
        label_set = set(labels)
        value_set = set(self._value(doc))
        found: dict[str, Meta] = {}
        for label in labels:
            name = self._names.get(_label_key(label.text_content()))
            if name is None or name in found:
                continue
            values = []
            for sibling in label.itersiblings():
                if sibling in label_set:
                    break
                if sibling in value_set:
                    values.append(sibling)
            if values:
                text = ", ".join(clean_text(v.text_content()) for v in values)
                found[name] = Meta(tuple(values), text)
            elif tail := clean_text(label.tail or ""):
                found[name] = Meta((), tail)
        return found


def _label_key(text: str) -> str:
    return clean_text(text).rstrip(":：").strip().casefold()
