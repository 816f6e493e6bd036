"""The embedded OnlineFeatureStore: the newest vector per entity in one SQLite file (WAL)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from gristmill.errors import BackendError, BackendUnavailableError, ConfigError, DataError
from gristmill.stores.features import (
    EntityVector,
    OnlineCapabilities,
    VectorLookup,
    unnamed_origin,
)

# Times are integer microseconds since the epoch (UTC); ``expires_at`` is NULL for vectors
# without a TTL. Every namespace shares the table; the namespace leads the key. One row per
# (view, pipeline, entity): vectors of different pipelines never replace each other. (The
# table of gristmill before provenance, ``gm_online_features``, is left unread: the online
# store is a copy, filled again by the next preparation.)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS gm_online_vectors (
    namespace TEXT NOT NULL,
    view TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    entity TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    expires_at INTEGER,
    written_at INTEGER NOT NULL,
    feature_set_id TEXT NOT NULL,
    vector TEXT NOT NULL,
    PRIMARY KEY (namespace, view, pipeline, entity)) WITHOUT ROWID""",
    # Serves "is there a newer vector of another pipeline for this entity?".
    """CREATE INDEX IF NOT EXISTS gm_online_vectors_entity
    ON gm_online_vectors (namespace, view, entity, event_time)""",
)

# Newest wins, decided by SQLite inside the statement: a vector not strictly newer than the
# stored one of its pipeline (a late one, or a replay) changes nothing, whichever process
# wrote first.
_UPSERT = """INSERT INTO gm_online_vectors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (namespace, view, pipeline, entity) DO UPDATE SET
        event_time = excluded.event_time,
        expires_at = excluded.expires_at,
        written_at = excluded.written_at,
        feature_set_id = excluded.feature_set_id,
        vector = excluded.vector
    WHERE excluded.event_time > gm_online_vectors.event_time"""

# The entities travel as one JSON array, so one prepared statement serves any count. The
# newest event time of the entity's vectors in other pipelines decides "superseded".
_SELECT = """SELECT v.entity, v.event_time, v.expires_at, v.written_at, v.feature_set_id,
        v.vector,
        (SELECT max(o.event_time) FROM gm_online_vectors o
            WHERE o.namespace = v.namespace AND o.view = v.view AND o.entity = v.entity
                AND o.pipeline <> v.pipeline) AS newest_other
    FROM gm_online_vectors v
    WHERE v.namespace = ? AND v.view = ? AND v.pipeline = ?
        AND v.entity IN (SELECT value FROM json_each(?))"""

_DELETE_VIEW = "DELETE FROM gm_online_vectors WHERE namespace = ? AND view = ?"
_DELETE_PIPELINE = _DELETE_VIEW + " AND pipeline = ?"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ENTITIES_PER_QUERY = 10_000


class SqliteOnlineStore:
    """The online feature store in one SQLite file, shared by every process on the machine.

    One row per (namespace, view, pipeline, entity) holds the newest vector as JSON. Writes are
    ``BEGIN IMMEDIATE`` transactions with ``synchronous=NORMAL`` (the online store is a copy
    of the offline one: a power loss may lose the last writes, never corrupt the file).
    Expired vectors are filtered out on read and stay on disk until overwritten or their
    view is deleted. Values must be JSON scalars (None, bool, int, float, str) or lists.
    One connection per instance, guarded by a lock, so threads may share an instance.
    """

    capabilities = OnlineCapabilities(cross_process=True, native_ttl=False)

    def __init__(self, path: str, *, namespace: str = "default") -> None:
        self.path = path
        self.namespace = namespace
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({self.path!r}, namespace={self.namespace!r})"

    def __enter__(self) -> SqliteOnlineStore:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            with self._translated():
                conn = sqlite3.connect(
                    self.path, timeout=30.0, isolation_level=None, check_same_thread=False
                )
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    for statement in _SCHEMA:
                        conn.execute(statement)
                except BaseException:
                    conn.close()
                    raise
            self._conn = conn

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def put(self, view: str, vectors: Sequence[EntityVector], *, ttl: float | None = None) -> int:
        """One transaction; a vector's TTL counts from its event time, as in the port."""
        if not vectors:
            return 0
        rows = _rows(self.namespace, view, vectors, ttl)
        with self._lock, self._translated():
            conn = self._db
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return conn.total_changes - before

    def get(
        self,
        view: str,
        entities: Sequence[str],
        *,
        pipeline: str,
        features: Sequence[str] | None = None,
    ) -> list[VectorLookup]:
        """One query per 10,000 entities; expiry and supersession are judged per row."""
        if not entities:
            return []
        rows: list[_Row] = []
        with self._lock, self._translated():
            for start in range(0, len(entities), _ENTITIES_PER_QUERY):
                chunk = json.dumps(list(entities[start : start + _ENTITIES_PER_QUERY]))
                query = (self.namespace, view, pipeline, chunk)
                rows += self._db.execute(_SELECT, query).fetchall()
        stored = {row[0]: row for row in rows}
        now = time.time_ns() // 1000
        return [_lookup(entity, pipeline, stored.get(entity), features, now) for entity in entities]

    def delete_view(self, view: str, *, pipeline: str | None = None) -> None:
        with self._lock, self._translated():
            if pipeline is None:
                self._db.execute(_DELETE_VIEW, (self.namespace, view))
            else:
                self._db.execute(_DELETE_PIPELINE, (self.namespace, view, pipeline))

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BackendError(f"{self!r} is not open; call open() first")
        return self._conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise BackendUnavailableError(
                f"SQLite online store at {self.path!r}: {exc}; is the path writable?"
            ) from exc
        except sqlite3.Error as exc:
            raise BackendError(f"SQLite online store at {self.path!r}: {exc}") from exc


_Row = tuple[str, int, int | None, int, str, str, int | None]


def _when(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def _lookup(
    entity: str, pipeline: str, row: _Row | None, features: Sequence[str] | None, now: int
) -> VectorLookup:
    if row is None:
        return VectorLookup(entity, "missing")
    _, event, expires, written, feature_set_id, encoded, newest_other = row
    if expires is not None and expires <= now:
        return VectorLookup(entity, "expired", event_time=_when(event))
    if newest_other is not None and newest_other > event:
        return VectorLookup(
            entity, "superseded", event_time=_when(event), newer_time=_when(newest_other)
        )
    values = json.loads(encoded)
    if features is not None:
        values = {name: values[name] for name in features if name in values}
    vector = EntityVector(entity, values, _when(event), feature_set_id, pipeline, _when(written))
    return VectorLookup(entity, "found", vector, event_time=vector.event_time)


def _rows(
    namespace: str, view: str, vectors: Sequence[EntityVector], ttl: float | None
) -> list[tuple[str, str, str, str, int, int | None, int, str, str]]:
    ttl_us = None if ttl is None else round(ttl * 1_000_000)
    written = time.time_ns() // 1000
    rows = []
    for vector in vectors:
        problem = unnamed_origin(vector)
        if problem is not None:
            raise ConfigError(problem)
        moment = vector.event_time
        if moment.tzinfo is None:  # naive times are taken as UTC, as everywhere in gristmill
            moment = moment.replace(tzinfo=UTC)
        event = (moment - _EPOCH) // _MICROSECOND
        try:
            encoded = json.dumps(vector.values, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"the features of entity {vector.entity!r} cannot be stored online: {exc}; "
                "use None, bool, int, float or str values"
            ) from exc
        expires = None if ttl_us is None else event + ttl_us
        rows.append(
            (namespace, view, vector.pipeline, vector.entity, event, expires, written,
             vector.feature_set_id, encoded)
        )  # fmt: skip
    return rows
