"""The taxonomy: fields of work, issuers, countries and named regions.

The terms are data (``data/taxonomy.yaml``, from the navigation in the seed page); this
module only loads them and answers questions about them. Slugs follow DESIGN.md: the
English label lower-cased, every run of non-alphanumerics turned into ``-``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import yaml
from babel import Locale

from publisher.errors import PublisherError
from publisher.resources import package_data

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(label: str) -> str:
    """``"Cyber/ICT Security"`` → ``"cyber-ict-security"``."""
    return _NON_ALNUM.sub("-", label.lower()).strip("-")


@dataclass(frozen=True, slots=True)
class Term:
    """A field of work or an issuer."""

    slug: str
    label: str  # English; translated through the catalogs
    parent: str | None = None  # the parent issuer's slug
    country: str | None = None  # a field operation's country


@dataclass(frozen=True)
class Taxonomy:
    fields_of_work: Mapping[str, Term]
    issuers: Mapping[str, Term]
    country_groups: Mapping[str, tuple[str, ...]]
    regions: Mapping[str, tuple[str, ...]]
    official_names: Mapping[str, str]
    countries: frozenset[str] = field(init=False)
    _by_english_name: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = frozenset(c for group in self.country_groups.values() for c in group)
        object.__setattr__(self, "countries", codes)
        english = Locale("en").territories
        names = {str(english[c]).casefold(): c for c in codes if c in english}
        names.update({n.casefold(): c for c, n in self.official_names.items()})
        object.__setattr__(self, "_by_english_name", names)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Read-only views do not pickle; their contents do (worker processes need it).
        return _frozen, (
            dict(self.fields_of_work),
            dict(self.issuers),
            dict(self.country_groups),
            dict(self.regions),
            dict(self.official_names),
        )

    # -- lookups -------------------------------------------------------------------

    def field_of_work(self, text: str) -> str | None:
        """The slug for a slug or an English label of a field of work, else ``None``."""
        slug = slugify(text)
        return slug if slug in self.fields_of_work else None

    def issuer(self, text: str) -> str | None:
        """The slug for a slug, label or "Parent, Child" name of an issuer, else ``None``."""
        slug = slugify(text)
        if slug in self.issuers:
            return slug
        # "OSCE Secretariat, Transnational Threats Department": the last part names it.
        last = slugify(text.rsplit(",", 1)[-1])
        return last if last in self.issuers else None

    def issuer_name(self, slug: str) -> str:
        """The English display name, parent first: "OSCE Secretariat, Transnational…"."""
        term = self.issuers[slug]
        if term.parent is None or self.issuers[term.parent].label in {
            "Institutions",
            "Field operations",
        }:
            return term.label
        return f"{self.issuers[term.parent].label}, {term.label}"

    def country(self, text: str) -> str | None:
        """An ISO code for a code or an English country name we know, else ``None``."""
        code = text.strip().upper()
        if code in self.countries:
            return code
        return self._by_english_name.get(text.strip().casefold())

    def expand(self, names: Iterable[str]) -> frozenset[str]:
        """Country codes for codes and region names (unknown names are skipped)."""
        out: set[str] = set()
        for name in names:
            if name in self.regions:
                out.update(self.regions[name])
            elif (code := self.country(name)) is not None:
                out.add(code)
        return frozenset(out)

    def country_name(self, code: str, locale: Locale) -> str:
        """A country's name in ``locale`` from CLDR; the organisation's name in English."""
        if locale.language == "en" and code in self.official_names:
            return self.official_names[code]
        return str(locale.territories.get(code, code))

    def with_regions(self, extra: Mapping[str, Iterable[str]]) -> Taxonomy:
        """A copy with more named regions (from ``subscriptions.yaml``)."""
        regions = dict(self.regions)
        regions.update({name: tuple(codes) for name, codes in extra.items()})
        return Taxonomy(
            fields_of_work=self.fields_of_work,
            issuers=self.issuers,
            country_groups=self.country_groups,
            regions=MappingProxyType(regions),
            official_names=self.official_names,
        )


class TaxonomyError(PublisherError):
    """The taxonomy file is not what this module expects."""


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Load the taxonomy at ``path``, or the bundled one."""
    if path is None:
        return _bundled_taxonomy()
    return _load(path)


@cache
def _bundled_taxonomy() -> Taxonomy:
    return _load(package_data("data/taxonomy.yaml"))


def _load(path: Path) -> Taxonomy:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TaxonomyError(f"{path}: cannot read the taxonomy: {exc}") from exc
    try:
        return _build(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TaxonomyError(f"{path}: malformed taxonomy: {exc!r}") from exc


def _frozen(
    fields_of_work: dict[str, Term],
    issuers: dict[str, Term],
    country_groups: dict[str, tuple[str, ...]],
    regions: dict[str, tuple[str, ...]],
    official_names: dict[str, str],
) -> Taxonomy:
    return Taxonomy(
        fields_of_work=MappingProxyType(fields_of_work),
        issuers=MappingProxyType(issuers),
        country_groups=MappingProxyType(country_groups),
        regions=MappingProxyType(regions),
        official_names=MappingProxyType(official_names),
    )


def _build(raw: dict[str, Any]) -> Taxonomy:
    fields = {slugify(label): Term(slugify(label), label) for label in raw["fields_of_work"]}
    issuers: dict[str, Term] = {}

    def add(node: dict[str, Any], parent: str | None) -> None:
        slug = slugify(node["label"])
        if slug in issuers:
            raise ValueError(f"issuer {slug!r} appears twice")
        issuers[slug] = Term(slug, node["label"], parent, node.get("country"))
        for child in node.get("children", ()):
            add(child, slug)

    for node in raw["issuers"]:
        add(node, None)
    groups = {name: tuple(codes) for name, codes in raw["countries"].items()}
    known = {c for codes in groups.values() for c in codes}
    regions = {name: tuple(codes) for name, codes in raw.get("regions", {}).items()}
    for name, codes in regions.items():
        if unknown := set(codes) - known:
            raise ValueError(f"region {name!r} names unknown countries {sorted(unknown)}")
    return _frozen(fields, issuers, groups, regions, dict(raw.get("official_names", {})))


def extract_taxonomy(
    fileobj: IO[bytes], keywords: object, comment_tags: object, options: object
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Babel extractor: the labels of ``taxonomy.yaml`` as messages to translate.

    Configured in ``pyproject.toml`` (``[[tool.babel.mappings]]``), so ``pybabel extract``
    puts every field-of-work label, issuer label and official country name in
    ``locales/messages.pot`` next to the strings of the code and the templates.
    """
    node = yaml.compose(fileobj.read().decode("utf-8"), Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        if key.value == "fields_of_work":
            for item in value.value:
                yield item.start_mark.line + 1, None, item.value, ["field of work"]
        elif key.value == "official_names":
            for code, name in value.value:
                yield name.start_mark.line + 1, None, name.value, [f"country {code.value}"]
        elif key.value == "issuers":
            yield from _issuer_labels(value)


def _issuer_labels(node: yaml.Node) -> Iterator[tuple[int, str | None, str, list[str]]]:
    for entry in node.value:
        for key, value in entry.value:
            if key.value == "label":
                yield value.start_mark.line + 1, None, value.value, ["issuer"]
            elif key.value == "children":
                yield from _issuer_labels(value)
