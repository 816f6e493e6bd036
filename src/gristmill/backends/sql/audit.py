"""``AuditLog`` on SQL: an append-only table of who did what to which object."""

from __future__ import annotations

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import audit_log
from gristmill.errors import ConflictError
from gristmill.stores.metadata import AuditEntry


class SqlAuditLog:
    """Audit entries, newest first by ``at`` (then id).

    ``append`` is idempotent per ``entry_id`` (a redelivered event may append its entry
    again); a *different* entry under an existing id is a ``ConflictError``.
    """

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def append(self, entry: AuditEntry) -> None:
        with self._db.write() as connection:
            if self._db.insert_new(connection, audit_log, to_values(entry)):
                return
            query = sa.select(audit_log).where(audit_log.c.entry_id == entry.entry_id)
            existing = to_object(AuditEntry, connection.execute(query).one())
        if existing != entry:
            raise ConflictError(
                f"audit entry {entry.entry_id!r} exists already with other content; "
                "append a new entry with a new id"
            )

    def list_entries(
        self, *, subject: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        query = sa.select(audit_log)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        query = query.order_by(audit_log.c.at.desc(), audit_log.c.entry_id.desc()).limit(limit)
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(AuditEntry, row) for row in rows]
