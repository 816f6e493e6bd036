"""The embedded OnlineFeatureStore: the newest vector per entity in one SQLite file (WAL)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from gristmill.errors import BackendError, BackendUnavailableError, DataError
from gristmill.stores.features import EntityVector, OnlineCapabilities

# Times are integer microseconds since the epoch (UTC); ``expires_at`` is NULL for vectors
# without a TTL. Every namespace shares the table; the namespace leads the key.
_SCHEMA = """CREATE TABLE IF NOT EXISTS gm_online_features (
    namespace TEXT NOT NULL,
    view TEXT NOT NULL,
    entity TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    expires_at INTEGER,
    vector TEXT NOT NULL,
    PRIMARY KEY (namespace, view, entity)) WITHOUT ROWID"""

# Newest wins, decided by SQLite inside the statement: a vector not strictly newer than the
# stored one (a late one, or a replay) changes nothing, whichever process wrote first.
_UPSERT = """INSERT INTO gm_online_features VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (namespace, view, entity) DO UPDATE SET
        event_time = excluded.event_time,
        expires_at = excluded.expires_at,
        vector = excluded.vector
    WHERE excluded.event_time > gm_online_features.event_time"""

# The entities travel as one JSON array, so one prepared statement serves any count.
_SELECT = """SELECT entity, event_time, vector FROM gm_online_features
    WHERE namespace = ? AND view = ? AND entity IN (SELECT value FROM json_each(?))
        AND (expires_at IS NULL OR expires_at > ?)"""

_DELETE_VIEW = "DELETE FROM gm_online_features WHERE namespace = ? AND view = ?"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ENTITIES_PER_QUERY = 10_000


class SqliteOnlineStore:
    """The online feature store in one SQLite file, shared by every process on the machine.

    One row per (namespace, view, entity) holds the newest vector as JSON. Writes are
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
                    conn.execute(_SCHEMA)
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
        self, view: str, entities: Sequence[str], *, features: Sequence[str] | None = None
    ) -> list[EntityVector | None]:
        """One query per 10,000 entities; expired rows are filtered out by SQLite."""
        if not entities:
            return []
        now = time.time_ns() // 1000
        rows: list[tuple[str, int, str]] = []
        with self._lock, self._translated():
            for start in range(0, len(entities), _ENTITIES_PER_QUERY):
                chunk = json.dumps(list(entities[start : start + _ENTITIES_PER_QUERY]))
                rows += self._db.execute(_SELECT, (self.namespace, view, chunk, now)).fetchall()
        stored = {entity: (event, vector) for entity, event, vector in rows}
        found: list[EntityVector | None] = []
        for entity in entities:
            row = stored.get(entity)
            if row is None:
                found.append(None)
                continue
            values = json.loads(row[1])
            if features is not None:
                values = {name: values[name] for name in features if name in values}
            found.append(EntityVector(entity, values, _EPOCH + row[0] * _MICROSECOND))
        return found

    def delete_view(self, view: str) -> None:
        with self._lock, self._translated():
            self._db.execute(_DELETE_VIEW, (self.namespace, view))

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


def _rows(
    namespace: str, view: str, vectors: Sequence[EntityVector], ttl: float | None
) -> list[tuple[str, str, str, int, int | None, str]]:
    ttl_us = None if ttl is None else round(ttl * 1_000_000)
    rows = []
    for vector in vectors:
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
        rows.append((namespace, view, vector.entity, event, expires, encoded))
    return rows
