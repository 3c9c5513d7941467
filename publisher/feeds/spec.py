"""Which feed: a language, a filter (fields of work, countries) and a format.

A filter follows the rules of ``subscriptions.yaml`` (README, "Who gets what"): fields
of work any-of, countries any-of, and an item naming no country belongs to every
country's feed, since organisation-wide news concerns everyone. A feed is what a
subscriber with that rule would read, without the mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode

from publisher.errors import PublisherError
from publisher.taxonomy import Taxonomy


class FeedFormat(StrEnum):
    ATOM = "atom"
    RSS = "rss"
    JSON = "json"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    FeedFormat.ATOM: "application/atom+xml; charset=utf-8",
    FeedFormat.RSS: "application/rss+xml; charset=utf-8",
    FeedFormat.JSON: "application/feed+json; charset=utf-8",
}


class UnknownFeed(PublisherError, LookupError):
    """A locale, field of work, country or format no feed exists for."""


@dataclass(frozen=True, slots=True, order=True)
class FeedSpec:
    """A filter in canonical form: sorted, without repeats."""

    fields: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()

    @classmethod
    def of(cls, fields: Iterable[str] = (), countries: Iterable[str] = ()) -> FeedSpec:
        return cls(tuple(sorted(set(fields))), tuple(sorted(set(countries))))

    @classmethod
    def parse(
        cls, fields: Iterable[str], countries: Iterable[str], *, taxonomy: Taxonomy
    ) -> FeedSpec:
        """A filter from a request: slugs, ISO codes or region names; unknown ones refused."""
        field_list = list(fields)
        for slug in field_list:
            if slug not in taxonomy.fields_of_work:
                raise UnknownFeed(f"unknown field of work {slug!r}")
        codes: set[str] = set()
        for name in countries:
            if name.upper() in taxonomy.countries:
                codes.add(name.upper())
            elif name in taxonomy.regions:
                codes.update(taxonomy.regions[name])
            else:
                raise UnknownFeed(f"unknown country or region {name!r}")
        return cls.of(field_list, codes)

    @property
    def key(self) -> str:
        """A name for manifests and ids: ``all``, ``field/policing``, ``country/UZ``,
        or the query string of a combination."""
        if not self.fields and not self.countries:
            return "all"
        if len(self.fields) == 1 and not self.countries:
            return f"field/{self.fields[0]}"
        if not self.fields and len(self.countries) == 1:
            return f"country/{self.countries[0]}"
        return self._query()

    def path(self, fmt: FeedFormat) -> str:
        """Where the feed lives under ``/feeds/<locale>/``."""
        key = self.key
        if key.startswith(("field/", "country/")) or key == "all":
            return f"{key}.{fmt}"
        return f"all.{fmt}?{key}"

    @property
    def is_standard(self) -> bool:
        """All items, one field of work or one country: the feeds built as files."""
        return "?" not in self.path(FeedFormat.ATOM)

    def _query(self) -> str:
        pairs = [("field", f) for f in self.fields] + [("country", c) for c in self.countries]
        return urlencode(pairs)


def standard_specs(taxonomy: Taxonomy) -> Iterator[FeedSpec]:
    """All items, then each field of work, then each country, in a stable order."""
    yield FeedSpec()
    for slug in taxonomy.fields_of_work:
        yield FeedSpec(fields=(slug,))
    for code in sorted(taxonomy.countries):
        yield FeedSpec(countries=(code,))
