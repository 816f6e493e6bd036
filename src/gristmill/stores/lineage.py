"""Lineage traversal over the ``LineageStore`` port: a node's ancestors and descendants.

Pure: it asks the port for one node's parents or children at a time, so it works on every
backend (``gristmill lineage ID`` and the dashboard use it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from gristmill.stores.metadata import LineageEdge, LineageStore


class LineageGraph(NamedTuple):
    """The edges around one node, each list in breadth-first order (nearest first)."""

    ancestors: list[LineageEdge]
    descendants: list[LineageEdge]


def lineage_graph(store: LineageStore, node_id: str, *, depth: int = 10) -> LineageGraph:
    """The edges leading to ``node_id`` (ancestors) and away from it (descendants).

    ``depth`` is the most hops followed in each direction (1: direct parents and children
    only; 0: nothing). Every edge appears once, so cycles and diamonds terminate.
    """
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, not {depth}")
    return LineageGraph(
        ancestors=_walk(node_id, store.parents, lambda edge: edge.parent_id, depth),
        descendants=_walk(node_id, store.children, lambda edge: edge.child_id, depth),
    )


def _walk(
    start: str,
    step: Callable[[str], list[LineageEdge]],
    next_node: Callable[[LineageEdge], str],
    depth: int,
) -> list[LineageEdge]:
    edges: list[LineageEdge] = []
    seen_edges: set[tuple[str, str, str]] = set()
    seen_nodes = {start}
    frontier = [start]
    for _ in range(depth):
        following: list[str] = []
        for node in frontier:
            for edge in step(node):
                key = (edge.parent_id, edge.child_id, edge.relation)
                if key in seen_edges:
                    continue
                seen_edges.add(key)
                edges.append(edge)
                target = next_node(edge)
                if target not in seen_nodes:
                    seen_nodes.add(target)
                    following.append(target)
        if not following:
            break
        frontier = following
    return edges
