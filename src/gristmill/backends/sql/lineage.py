"""``LineageStore`` on SQL: one row per edge, unique on (parent, child, relation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import lineage_edges as edges
from gristmill.stores.metadata import LineageEdge


class SqlLineageStore:
    """Lineage edges. An edge given without ``created_at`` is stamped with the time it is
    first recorded; recording it again changes nothing (the first kinds and time stay)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def add_edges(self, edges_: Sequence[LineageEdge]) -> None:
        if not edges_:
            return
        now = datetime.now(UTC)
        rows = [
            to_values(edge if edge.created_at is not None else replace(edge, created_at=now))
            for edge in edges_
        ]
        with self._db.write() as connection:
            self._db.insert_missing(connection, edges, rows)

    def parents(self, node_id: str) -> list[LineageEdge]:
        """Edges into ``node_id``, oldest first."""
        return self._select(edges.c.child_id == node_id)

    def children(self, node_id: str) -> list[LineageEdge]:
        """Edges out of ``node_id``, oldest first."""
        return self._select(edges.c.parent_id == node_id)

    def _select(self, condition: sa.ColumnElement[bool]) -> list[LineageEdge]:
        query = (
            sa.select(edges)
            .where(condition)
            .order_by(edges.c.created_at, edges.c.parent_id, edges.c.child_id, edges.c.relation)
        )
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(LineageEdge, row) for row in rows]
