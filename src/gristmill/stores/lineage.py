"""Lineage traversal over the ``LineageReader`` port: a node's ancestors and descendants;
and the one id a file has as a lineage node.

The traversal asks the port for one node's parents or children at a time, so it works on
every backend (``gristmill lineage ID`` and the dashboard use it).

A file is one node whoever names it: ingestion (a source's ``path``, a folder's files, a
``--file``) and a score job's input write ``file_node(url)`` — a local file as its absolute
path without a scheme, a remote one as its URL. Edges written before that named a local file
``file:///abs/path`` (a folder's files); the traversal reads such an id as the path and
finds a file's edges under either spelling, so old and new edges meet in one node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from gristmill.core.urls import mask_url
from gristmill.stores.metadata import LineageEdge, LineageReader

FILE_KIND = "file"
"""The lineage kind of an input file (its id is ``file_node`` of its URL)."""
_LOCAL_SCHEMES = ("file://", "local://")


def file_node(url: str) -> str:
    """The lineage node id of the file at ``url``: a local file's absolute path, resolved
    (``file://`` dropped, a relative path read from the working directory, ``~`` expanded);
    a remote file's URL as given (``s3://bucket/key``), a password in it masked."""
    path = _local_path(url)
    if "://" in path:
        return mask_url(path)
    return str(Path(path).expanduser().resolve())


def file_spellings(node_id: str) -> list[str]:
    """The ids a file's edges may carry: its id, and for a local path the ``file://`` URL
    edges written before ``file_node`` used (a folder's files)."""
    node_id = _local_path(node_id)
    if node_id.startswith("/"):
        return [node_id, f"file://{node_id}"]
    return [node_id]


def _local_path(url: str) -> str:
    """``url`` without a local scheme (``file:///a/b`` → ``/a/b``); others unchanged."""
    for scheme in _LOCAL_SCHEMES:
        if url.startswith(scheme):
            rest = url[len(scheme) :]
            return rest.removeprefix("localhost") if rest.startswith("localhost/") else rest
    return url


def _read(edge: LineageEdge) -> LineageEdge:
    """``edge`` with the file ids written before ``file_node`` read as it writes them."""
    if FILE_KIND not in (edge.parent_kind, edge.child_kind):
        return edge
    parent = _local_path(edge.parent_id) if edge.parent_kind == FILE_KIND else edge.parent_id
    child = _local_path(edge.child_id) if edge.child_kind == FILE_KIND else edge.child_id
    return replace(edge, parent_id=parent, child_id=child)


class LineageGraph(NamedTuple):
    """The edges around one node, each list in breadth-first order (nearest first)."""

    ancestors: list[LineageEdge]
    descendants: list[LineageEdge]


def lineage_graph(store: LineageReader, node_id: str, *, depth: int = 10) -> LineageGraph:
    """The edges leading to ``node_id`` (ancestors) and away from it (descendants).

    ``depth`` is the most hops followed in each direction (1: direct parents and children
    only; 0: nothing). Every edge appears once, so cycles and diamonds terminate.
    """
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, not {depth}")
    node_id = _local_path(node_id)
    return LineageGraph(
        ancestors=_walk(node_id, _reading(store.parents), lambda edge: edge.parent_id, depth),
        descendants=_walk(node_id, _reading(store.children), lambda edge: edge.child_id, depth),
    )


def _reading(
    step: Callable[[str], list[LineageEdge]],
) -> Callable[[str], list[LineageEdge]]:
    """``step`` over every spelling of a file's id, its edges read as ``file_node`` writes."""

    def read(node: str) -> list[LineageEdge]:
        return [_read(edge) for spelling in file_spellings(node) for edge in step(spelling)]

    return read


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
