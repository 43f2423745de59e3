"""Connected components, the one union-find of the project (homology groups, split components)."""
from __future__ import annotations

from typing import Hashable, Iterable, TypeVar

Node = TypeVar("Node", bound=Hashable)


def connected_components(nodes: Iterable[Node], edges: Iterable[tuple[Node, Node]]) -> dict[Node, Node]:
    """node -> the smallest node of its component (so the result does not depend on the order of the edges)."""
    parent = {node: node for node in nodes}

    def root(node: Node) -> Node:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {node: root(node) for node in parent}
