"""The default EventBus: durable, cross-process event delivery in one SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from gristmill.backends.deadletter import dead_letter, lease_expired, over_budget, undecodable
from gristmill.bus.port import BusCapabilities, Delivery
from gristmill.core.events import Event
from gristmill.errors import BackendError, BackendUnavailableError

T = TypeVar("T")

# Rows of all namespaces share three tables; the namespace is part of every key, so tests and
# pipelines can share one file. ``gm_groups.cursor`` is the last event sequence number a group
# has taken; ``gm_deliveries`` holds the group's leased or nacked events until they are acked.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS gm_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace TEXT NOT NULL,
        type TEXT NOT NULL,
        body BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS gm_events_by_type ON gm_events (namespace, type, seq)",
    """CREATE TABLE IF NOT EXISTS gm_groups (
        namespace TEXT NOT NULL,
        grp TEXT NOT NULL,
        type TEXT NOT NULL,
        cursor INTEGER NOT NULL,
        PRIMARY KEY (namespace, grp, type)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS gm_deliveries (
        namespace TEXT NOT NULL,
        grp TEXT NOT NULL,
        type TEXT NOT NULL,
        seq INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        visible_at REAL NOT NULL,
        consumer TEXT NOT NULL,
        PRIMARY KEY (namespace, grp, type, seq)) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS gm_deliveries_due
        ON gm_deliveries (namespace, grp, type, visible_at)""",
)

_PENDING = """SELECT EXISTS (
        SELECT 1 FROM gm_deliveries
        WHERE namespace = ? AND grp = ? AND type = ? AND visible_at <= ?)
    OR EXISTS (
        SELECT 1 FROM gm_events WHERE namespace = ? AND type = ? AND seq > COALESCE(
            (SELECT cursor FROM gm_groups WHERE namespace = ? AND grp = ? AND type = ?), 0))"""
_DUE = """SELECT d.seq, d.attempts, e.body FROM gm_deliveries AS d JOIN gm_events AS e USING (seq)
    WHERE d.namespace = ? AND d.grp = ? AND d.type = ? AND d.visible_at <= ?
    ORDER BY d.visible_at, d.seq LIMIT ?"""
_NEW = """SELECT seq, body FROM gm_events
    WHERE namespace = ? AND type = ? AND seq > ? ORDER BY seq LIMIT ?"""
_INSERT_EVENT = "INSERT INTO gm_events (namespace, type, body) VALUES (?, ?, ?)"
_LEASE = """UPDATE gm_deliveries SET attempts = attempts + 1, visible_at = ?, consumer = ?
    WHERE namespace = ? AND grp = ? AND type = ? AND seq = ?"""
_INSERT_DELIVERY = """INSERT INTO gm_deliveries
    (namespace, grp, type, seq, attempts, visible_at, consumer) VALUES (?, ?, ?, ?, 1, ?, ?)"""
_DELETE_DELIVERY = (
    "DELETE FROM gm_deliveries WHERE namespace = ? AND grp = ? AND type = ? AND seq = ?"
)
_DELAY = """UPDATE gm_deliveries SET visible_at = ?
    WHERE namespace = ? AND grp = ? AND type = ? AND seq = ? AND attempts = ?"""
_OWNED = """SELECT 1 FROM gm_deliveries
    WHERE namespace = ? AND grp = ? AND type = ? AND seq = ? AND attempts = ?"""

# An idle consumer polls; the pause grows by half from the first to the last value. At a steady
# 100 ev/s the pause never grows past ~5 ms, so latency stays low; idle, a consumer costs
# about 40 cheap read-only queries a second. Publishes through the same instance wake it at once.
_FIRST_PAUSE = 0.001
_LAST_PAUSE = 0.025

_Row = tuple[int, int, bytes | str]  # seq, attempt, body (str if a foreign writer stored TEXT)
_Letter = tuple[int, int, Event]  # seq, attempt, the dead letter replacing it


class SqliteBus:
    """An EventBus on one SQLite file (WAL), shared safely by every process on the machine.

    Publishing commits with ``synchronous=FULL`` (fsync: durable even against power loss when
    ``publish`` returns). Leases, acks and nacks commit with ``synchronous=NORMAL``: they
    survive any process crash, and a power loss can at worst cause a redelivery, which
    at-least-once allows. Consumers claim work inside ``BEGIN IMMEDIATE`` transactions, so
    consumers in different processes never lease the same event at once. All SQLite calls
    run on one dedicated thread per bus instance.
    """

    capabilities = BusCapabilities(cross_process=True, native_batching=True)

    def __init__(
        self,
        path: str,
        *,
        namespace: str = "default",
        max_attempts: int = 5,
        ack_wait: float = 30.0,
    ) -> None:
        self.path = path
        self.namespace = namespace
        self.max_attempts = max_attempts
        self.ack_wait = ack_wait
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._sleepers: set[asyncio.Future[None]] | None = None  # woken by a publish
        self._acks: deque[tuple[str, str, str, int]] = deque()

    def __repr__(self) -> str:
        return f"SqliteBus({self.path!r}, namespace={self.namespace!r})"

    async def open(self) -> None:
        if self._thread is not None:
            return
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="gristmill-sqlite-bus")
        self._sleepers = set()
        try:
            self._conn = await self._run(self._connect)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(thread, conn.close)
        thread.shutdown(wait=True)

    async def publish(self, events: Sequence[Event]) -> None:
        if events:
            rows = [(self.namespace, event.type, event.to_bytes()) for event in events]
            await self._run(self._append, rows)
            await self._notify()

    async def consume(
        self,
        group: str,
        event_type: str,
        consumer: str,
        *,
        max_events: int = 1,
        wait: float = 1.0,
    ) -> list[Delivery]:
        key = (self.namespace, group, event_type)
        deadline = time.monotonic() + wait
        pause = _FIRST_PAUSE
        while True:
            rows = await self._run(self._claim, key, consumer, max_events)
            got = await self._deliveries(key, rows)
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return got
            if not rows:
                await self._sleep(min(pause, remaining))
                pause = min(pause * 1.5, _LAST_PAUSE)

    async def ack(self, delivery: Delivery) -> None:
        event_type, seq = delivery.receipt
        self._acks.append((self.namespace, delivery.group, event_type, seq))
        await self._run(self._flush_acks)

    async def nack(self, delivery: Delivery, *, error: str = "", delay: float = 0.0) -> None:
        event_type, seq = delivery.receipt
        key = (self.namespace, delivery.group, event_type)
        if delivery.attempt >= self.max_attempts:
            letter = dead_letter(
                delivery.event, group=delivery.group, attempts=delivery.attempt, error=error
            )
            await self._run(self._bury, key, [(seq, delivery.attempt, letter)])
        else:
            await self._run(self._delay, key, seq, delivery.attempt, time.time() + delay)
        await self._notify()

    async def groups(self, event_type: str) -> list[str]:
        return await self._run(self._groups, event_type)

    async def delete_group(self, group: str, event_type: str) -> None:
        await self._run(self._forget_group, (self.namespace, group, event_type))

    def _groups(self, event_type: str) -> list[str]:
        rows = self._db.execute(
            "SELECT grp FROM gm_groups WHERE namespace = ? AND type = ? ORDER BY grp",
            (self.namespace, event_type),
        ).fetchall()
        return [row[0] for row in rows]

    def _forget_group(self, key: tuple[str, str, str]) -> None:
        self._flush_acks()
        db, where = self._db, "WHERE namespace = ? AND grp = ? AND type = ?"
        with _transaction(db, durable=True):
            db.execute(f"DELETE FROM gm_deliveries {where}", key)
            db.execute(f"DELETE FROM gm_groups {where}", key)

    async def extend(self, delivery: Delivery) -> None:
        event_type, seq = delivery.receipt
        key = (self.namespace, delivery.group, event_type)
        await self._run(self._delay, key, seq, delivery.attempt, time.time() + self.ack_wait)

    # -- the event loop side ------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._thread is None:
            raise BackendError(f"{self!r} is not open; await bus.open() first")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        except sqlite3.OperationalError as exc:
            raise BackendUnavailableError(f"SQLite bus at {self.path!r}: {exc}") from exc
        except sqlite3.Error as exc:
            raise BackendError(f"SQLite bus at {self.path!r}: {exc}") from exc

    async def _deliveries(self, key: tuple[str, str, str], rows: list[_Row]) -> list[Delivery]:
        """Decode claimed rows; a body that is no event is dead-lettered at once, not returned."""
        _, group, event_type = key
        got: list[Delivery] = []
        letters: list[_Letter] = []
        for seq, attempt, body in rows:
            try:
                event = Event.from_bytes(body)
            except ValueError as exc:
                letter = undecodable(
                    body, exc, event_type=event_type, group=group, attempts=attempt
                )
                letters.append((seq, attempt, letter))
            else:
                got.append(Delivery(event, group, attempt, (event_type, seq)))
        if letters:
            await self._run(self._bury, key, letters)
            await self._notify()
        return got

    async def _notify(self) -> None:
        for sleeper in self._sleepers or ():
            if not sleeper.done():
                sleeper.set_result(None)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early when this instance publishes or nacks. A plain future and a
        timer, no lock: a consumer cancelled while it sleeps ends at once (a condition's
        ``wait`` under ``wait_for`` could hang there on Python 3.11, its cancellation
        racing the timeout while it took the lock back)."""
        if self._sleepers is None:
            return
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        self._sleepers.add(sleeper)
        timer = loop.call_later(seconds, _wake, sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleepers.discard(sleeper)

    # -- the SQLite thread side ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        with _transaction(conn, durable=True):
            for statement in _SCHEMA:
                conn.execute(statement)
        return conn

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BackendError(f"{self!r} is not open; await bus.open() first")
        return self._conn

    def _append(self, rows: list[tuple[str, str, bytes]]) -> None:
        with _transaction(self._db, durable=True):
            self._db.executemany(_INSERT_EVENT, rows)

    def _claim(self, key: tuple[str, str, str], consumer: str, limit: int) -> list[_Row]:
        db, now = self._db, time.time()
        namespace, _, event_type = key
        # A read-only probe first: idle polls never take the write lock.
        (pending,) = db.execute(_PENDING, (*key, now, namespace, event_type, *key)).fetchone()
        if not pending:
            return []
        with _transaction(db, durable=False):
            db.execute("INSERT OR IGNORE INTO gm_groups VALUES (?, ?, ?, 0)", key)
            rows = self._reclaim(key, consumer, limit, now)
            if len(rows) < limit:
                rows += self._take_new(key, consumer, limit - len(rows), now)
        return rows

    def _reclaim(
        self, key: tuple[str, str, str], consumer: str, limit: int, now: float
    ) -> list[_Row]:
        """Lease again what was nacked or whose lease expired; dead-letter what is over budget."""
        db, rows = self._db, []
        for seq, attempts, body in db.execute(_DUE, (*key, now, limit)).fetchall():
            if attempts >= self.max_attempts:
                letter = over_budget(
                    body,
                    event_type=key[2],
                    group=key[1],
                    attempts=attempts,
                    error=lease_expired(self.ack_wait),
                )
                db.execute(_INSERT_EVENT, (self.namespace, letter.type, letter.to_bytes()))
                db.execute(_DELETE_DELIVERY, (*key, seq))
            else:
                db.execute(_LEASE, (now + self.ack_wait, consumer, *key, seq))
                rows.append((seq, attempts + 1, body))
        return rows

    def _take_new(
        self, key: tuple[str, str, str], consumer: str, limit: int, now: float
    ) -> list[_Row]:
        db = self._db
        namespace, _, event_type = key
        (cursor,) = db.execute(
            "SELECT cursor FROM gm_groups WHERE namespace = ? AND grp = ? AND type = ?", key
        ).fetchone()
        fresh = db.execute(_NEW, (namespace, event_type, cursor, limit)).fetchall()
        if not fresh:
            return []
        leased_until = now + self.ack_wait
        db.executemany(_INSERT_DELIVERY, [(*key, seq, leased_until, consumer) for seq, _ in fresh])
        db.execute(
            "UPDATE gm_groups SET cursor = ? WHERE namespace = ? AND grp = ? AND type = ?",
            (fresh[-1][0], *key),
        )
        return [(seq, 1, body) for seq, body in fresh]

    def _flush_acks(self) -> None:
        # Group commit: the first job to run takes every ack queued so far (all of a gathered
        # batch, typically) into one transaction; the jobs of the acks it took find none left.
        # On failure the acks go back to the queue, so those jobs retry them and report.
        row_keys = []
        while self._acks:
            row_keys.append(self._acks.popleft())
        if not row_keys:
            return
        try:
            with _transaction(self._db, durable=False):
                self._db.executemany(_DELETE_DELIVERY, row_keys)
        except BaseException:
            self._acks.extendleft(reversed(row_keys))
            raise

    def _delay(self, key: tuple[str, str, str], seq: int, attempt: int, visible_at: float) -> None:
        # Only the holder of the current lease may nack or extend: ``attempts`` must match.
        with _transaction(self._db, durable=False):
            self._db.execute(_DELAY, (visible_at, *key, seq, attempt))

    def _bury(self, key: tuple[str, str, str], letters: list[_Letter]) -> None:
        db = self._db
        with _transaction(db, durable=True):
            for seq, attempt, letter in letters:
                if db.execute(_OWNED, (*key, seq, attempt)).fetchone() is not None:
                    db.execute(_INSERT_EVENT, (self.namespace, letter.type, letter.to_bytes()))
                    db.execute(_DELETE_DELIVERY, (*key, seq))


@contextmanager
def _transaction(conn: sqlite3.Connection, *, durable: bool) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) at the given durability."""
    conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
