"""Category names as sources give them → the taxonomy's fields of work and countries.

A feed's ``<category>`` terms and a page's "Fields of work:"/"Countries:" values are
free text; only names the taxonomy knows (or that a source's settings map to one)
become tags, and a region stands for its countries. Other names are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from publisher.taxonomy import Taxonomy, slugify


class Tagger:
    """Category names → field-of-work slugs and country codes, through the taxonomy."""

    def __init__(self, taxonomy: Taxonomy, mapping: Mapping[str, str] | None = None) -> None:
        self._taxonomy = taxonomy
        self._mapping = {k.strip().casefold(): v for k, v in (mapping or {}).items()}

    def classify(self, names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(fields of work, countries) named by ``names``; unknown names are ignored."""
        fields: dict[str, None] = {}
        countries: set[str] = set()
        for raw in names:
            name = self._mapping.get(raw.strip().casefold(), raw)
            if (slug := self._taxonomy.field_of_work(name)) is not None:
                fields[slug] = None
            elif (region := slugify(name)) in self._taxonomy.regions:
                countries.update(self._taxonomy.regions[region])
            elif (code := self._taxonomy.country(name)) is not None:
                countries.add(code)
        return tuple(fields), tuple(sorted(countries))
