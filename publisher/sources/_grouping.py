"""Grouping the translations of one item: members that name each other are one item."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def group_linked(
    members: Sequence[T],
    *,
    names: Callable[[T], Iterable[str]],
    links: Callable[[T], Iterable[str]],
) -> list[list[T]]:
    """Connected groups, in first-seen order, of members that share a name or whose
    links name another member (a union-find over the members' positions)."""
    parent = list(range(len(members)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        parent[max(a, b)] = min(a, b)

    index: dict[str, int] = {}
    for i, member in enumerate(members):
        for name in names(member):
            union(i, index.setdefault(name, i))
    for i, member in enumerate(members):
        for link in links(member):
            if (j := index.get(link)) is not None:
                union(i, j)
    groups: dict[int, list[T]] = {}
    for i, member in enumerate(members):
        groups.setdefault(find(i), []).append(member)
    return list(groups.values())
