"""``DeadLetterStore`` on SQL: one row per ``event.dead_lettered`` event collected."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import dead_letters
from gristmill.errors import NotFoundError
from gristmill.stores.dead_letters import DeadLetter


class SqlDeadLetterStore:
    """Dead letters, newest first by ``dead_lettered_at`` (then id)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def add_letter(self, letter: DeadLetter) -> None:
        with self._db.write() as connection:
            self._db.insert_missing(connection, dead_letters, [to_values(letter)])

    def get_letter(self, letter_id: str) -> DeadLetter:
        with self._db.read() as connection:
            letter = self._select(connection, letter_id)
        if letter is None:
            raise _not_found(letter_id)
        return letter

    def list_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        query = sa.select(dead_letters).order_by(
            dead_letters.c.dead_lettered_at.desc(), dead_letters.c.letter_id.desc()
        )
        with self._db.read() as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [to_object(DeadLetter, row) for row in rows]

    def mark_replayed(self, letter_id: str, event_id: str, at: datetime) -> DeadLetter:
        update = (
            sa.update(dead_letters)
            .where(dead_letters.c.letter_id == letter_id)
            .values(replayed_as=event_id, replayed_at=at)
        )
        with self._db.write() as connection:
            connection.execute(update)
            letter = self._select(connection, letter_id)
        if letter is None:
            raise _not_found(letter_id)
        return letter

    @staticmethod
    def _select(connection: sa.Connection, letter_id: str) -> DeadLetter | None:
        row = connection.execute(
            sa.select(dead_letters).where(dead_letters.c.letter_id == letter_id)
        ).first()
        return None if row is None else to_object(DeadLetter, row)


def _not_found(letter_id: str) -> NotFoundError:
    return NotFoundError(
        f"no dead letter with id {letter_id!r}; list them with `gristmill dead-letters ls`"
    )
