"""``ScheduleStore`` on SQL: a row per schedule, a row per tick claimed (the claim is its key)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import schedule_ticks, schedules
from gristmill.stores.schedules import Schedule, Tick, TickOutcome

_SAME = ("action", "target", "model", "timing")
"""What a schedule's ``since`` is kept for: recorded again with these unchanged."""


class SqlScheduleStore:
    """Schedules by key; ticks by (key, tick time)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def set_schedules(self, pipeline: str, schedules_: list[Schedule]) -> list[Schedule]:
        with self._db.write() as connection:
            query = sa.select(schedules).where(schedules.c.pipeline == pipeline)
            recorded = {
                row.key: to_object(Schedule, row) for row in connection.execute(query).all()
            }
            kept = [_kept(schedule, recorded.get(schedule.key)) for schedule in schedules_]
            gone = sa.delete(schedules).where(
                schedules.c.pipeline == pipeline, schedules.c.key.not_in([s.key for s in kept])
            )
            connection.execute(gone)
            for schedule in kept:  # an upsert: a racing writer of the same key is no clash
                self._db.upsert(connection, schedules, to_values(schedule))
        return sorted(kept, key=lambda schedule: schedule.key)

    def list_schedules(self) -> list[Schedule]:
        with self._db.read() as connection:
            rows = connection.execute(sa.select(schedules).order_by(schedules.c.key)).all()
        return [to_object(Schedule, row) for row in rows]

    def claim_tick(self, tick: Tick) -> bool:
        with self._db.write() as connection:
            return self._db.insert_new(connection, schedule_ticks, to_values(tick))

    def find_tick(self, key: str, tick_at: datetime) -> Tick | None:
        query = sa.select(schedule_ticks).where(
            schedule_ticks.c.key == key, schedule_ticks.c.tick_at == tick_at
        )
        with self._db.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else to_object(Tick, row)

    def latest_tick(self, key: str, *, outcome: TickOutcome | None = None) -> Tick | None:
        query = sa.select(schedule_ticks).where(schedule_ticks.c.key == key)
        if outcome is not None:
            query = query.where(schedule_ticks.c.outcome == outcome)
        query = query.order_by(schedule_ticks.c.tick_at.desc()).limit(1)
        with self._db.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else to_object(Tick, row)

    def mark_published(self, key: str, tick_at: datetime, at: datetime) -> None:
        statement = (
            sa.update(schedule_ticks)
            .where(
                schedule_ticks.c.key == key,
                schedule_ticks.c.tick_at == tick_at,
                schedule_ticks.c.published_at.is_(None),
            )
            .values(published_at=at)
        )
        with self._db.write() as connection:
            connection.execute(statement)

    def list_unpublished(self, fired_before: datetime) -> list[Tick]:
        query = (
            sa.select(schedule_ticks)
            .where(
                schedule_ticks.c.published_at.is_(None),
                schedule_ticks.c.fired_at < fired_before,
            )
            .order_by(schedule_ticks.c.fired_at, schedule_ticks.c.key)
        )
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(Tick, row) for row in rows]


def _kept(schedule: Schedule, recorded: Schedule | None) -> Schedule:
    """``schedule`` with the recorded ``since`` when nothing that decides its ticks changed."""
    if recorded is None:
        return schedule
    if any(getattr(schedule, name) != getattr(recorded, name) for name in _SAME):
        return schedule
    return replace(schedule, since=recorded.since)
