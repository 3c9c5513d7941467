"""The file's own regions: names that stand for several countries in any rule.

A region adds to the taxonomy's; it may restate one of those (same countries, any
order) but not change it, and it lists country codes only, at least one.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher.subscriptions._nodes import Report, describe, is_null, one_of, pairs, quote
from publisher.subscriptions._values import unknown_place
from publisher.taxonomy import Taxonomy


def read_regions(
    node: Node | None, report: Report, taxonomy: Taxonomy
) -> dict[str, tuple[str, ...]]:
    """The file's own regions, each a name and the country codes it stands for."""
    if node is None or is_null(node):
        return {}
    if type(node) is not MappingNode:
        expected = "a mapping of region names to lists of country codes"
        report(node, f"expected {expected}, found {describe(node)}")
        return {}
    regions: dict[str, tuple[str, ...]] = {}
    for name, key_node, value in pairs(node, report, None, "in regions"):
        if name in taxonomy.countries:
            report(key_node, f"region name {quote(name)} is a country code; expected another name")
            continue
        codes = _region_members(name, value, report, taxonomy)
        if codes is None:
            continue
        built_in = taxonomy.regions.get(name)
        if built_in is not None and set(built_in) != set(codes):
            report(
                key_node,
                f"region {quote(name)} is already defined by the taxonomy as "
                f"{one_of(built_in)}; expected those countries, or another name",
            )
            continue
        regions[name] = codes
    return regions


def _region_members(
    name: str, node: Node, report: Report, taxonomy: Taxonomy
) -> tuple[str, ...] | None:
    if type(node) is not SequenceNode:
        found = describe(node)
        report(node, f"expected a list of country codes for region {quote(name)}, found {found}")
        return None
    codes: list[str] = []
    ok = True
    for item in node.value:
        if type(item) is not ScalarNode or is_null(item):
            report(item, f"expected a country code, found {describe(item)}")
            ok = False
        elif item.value in taxonomy.countries:
            codes.append(item.value)
        elif item.value in taxonomy.regions:
            report(
                item,
                f"{quote(item.value)} is a region; expected country codes "
                f"(here: {one_of(taxonomy.regions[item.value])})",
            )
            ok = False
        else:
            report(item, unknown_place(item.value, taxonomy, ()))
            ok = False
    if ok and not codes:
        report(node, f"region {quote(name)} lists no countries; expected at least one country code")
        return None
    return tuple(dict.fromkeys(codes)) if ok else None
