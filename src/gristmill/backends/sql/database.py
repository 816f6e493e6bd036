"""One SQL database behind the metadata store: URL checks, engine setup, transactions.

Driver exceptions are translated here, in one place, and chained: a failure to connect is
``BackendUnavailableError`` (naming the URL with its password masked), a constraint broken
by an unexpected duplicate is ``ConflictError``, anything else the driver raises is
``BackendError``. A value the columns cannot hold (a naive datetime, a summary that is not
JSON) comes out as the ``ValueError`` or ``TypeError`` it is.

SQLite is set up for several processes (workers) sharing one file: WAL journal, a busy
timeout, foreign keys on, and ``BEGIN IMMEDIATE`` for write transactions so two writers
queue for the lock instead of failing when one upgrades a read snapshot.
"""

from __future__ import annotations

import importlib.util
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url

from gristmill.backends.sql.tables import stage_executions
from gristmill.core.urls import mask_url
from gristmill.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ConflictError,
    LeaseLostError,
    MissingExtraError,
    UnknownBackendError,
)
from gristmill.stores.fencing import current_fence

BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10
_WRITE = "gristmill_write"
_Insert = postgresql.Insert | sqlite.Insert


class SqlDatabase:
    """An engine made on ``open``, with translated ``read``/``write`` transactions."""

    def __init__(self, url: str, *, schema: str | None = None, role: str = "metadata") -> None:
        self.url = url
        self.schema = schema
        self.role = role
        self._engine: sa.Engine | None = None
        self._statements: dict[tuple[str, str], sa.Executable] = {}

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._require_engine().dialect.name

    def open(self) -> None:
        """Create the engine (and a SQLite file's folder); idempotent."""
        if self._engine is not None:
            return
        url = _parse(self.url, self.role)
        try:
            if url.get_backend_name() == "sqlite":
                engine = _sqlite_engine(url)
            else:
                engine = sa.create_engine(
                    url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
                )
        except ImportError as error:
            raise MissingExtraError(
                f"the driver for {self.masked_url} is not installed ({error}); "
                "for PostgreSQL: pip install 'gristmill[postgres]'"
            ) from error
        if self.schema is not None and url.get_backend_name() != "sqlite":
            engine = engine.execution_options(schema_translate_map={None: self.schema})
        self._engine = engine

    def close(self) -> None:
        """Release every pooled connection; idempotent."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def fence_scope(self) -> str:
        """What names this database to a ``Fence`` (``stores.fencing``): its URL and schema."""
        return f"{self.url}#{self.schema or ''}"

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A transaction for reads only (SQLite: deferred, never blocks on writers)."""
        with self._transaction(write=False) as connection:
            yield connection

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A transaction that writes (SQLite: takes the write lock up front)."""
        with self._transaction(write=True) as connection:
            yield connection

    def insert_new(
        self, connection: sa.Connection, table: sa.Table, values: dict[str, Any]
    ) -> bool:
        """Insert a row unless it clashes with a key or unique constraint; ``True`` if inserted.

        Race-safe: of writers inserting clashing rows at once, exactly one gets ``True`` and
        the others wait for it to commit (so they can read its row next).
        """
        key = next(iter(table.primary_key.columns))
        statement = self._statement(
            "insert_new", table, lambda insert: insert.on_conflict_do_nothing().returning(key)
        )
        return connection.execute(statement, values).first() is not None

    def insert_missing(
        self, connection: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]
    ) -> None:
        """Insert those of ``rows`` that clash with no existing row; ignore the others."""
        statement = self._statement(
            "insert_missing", table, lambda insert: insert.on_conflict_do_nothing()
        )
        connection.execute(statement, list(rows))

    def upsert(self, connection: sa.Connection, table: sa.Table, values: dict[str, Any]) -> None:
        """Insert a row, or replace every column of the row with the same primary key."""
        statement = self._statement(
            "upsert",
            table,
            lambda insert: insert.on_conflict_do_update(
                index_elements=list(table.primary_key.columns),
                set_={c.name: insert.excluded[c.name] for c in table.columns if not c.primary_key},
            ),
        )
        connection.execute(statement, values)

    def _statement(
        self, kind: str, table: sa.Table, build: Callable[[_Insert], sa.Executable]
    ) -> sa.Executable:
        # An INSERT ... ON CONFLICT in this database's dialect, built once per table and kind:
        # building a statement costs more than running it on SQLite.
        statement = self._statements.get((kind, table.name))
        if statement is None:
            insert = (
                postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
            )
            statement = self._statements[kind, table.name] = build(insert)
        return statement

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        engine = self._require_engine()
        try:
            connection = engine.connect()
        except exc.DBAPIError as error:
            raise self._unavailable(error) from error
        try:
            with connection:
                connection.execution_options(**{_WRITE: write})
                with connection.begin():
                    yield connection
                    if write:
                        self._check_fence(connection)
        except exc.IntegrityError as error:
            raise ConflictError(
                f"the {self.role} store refused a duplicate: {error.orig}"
            ) from error
        except exc.DBAPIError as error:
            if error.connection_invalidated:
                raise self._unavailable(error) from error
            raise BackendError(
                f"the {self.role} store at {self.masked_url} failed: {error.orig}"
            ) from error
        except exc.StatementError as error:
            if isinstance(error.orig, ValueError | TypeError):  # the caller's value, not the db
                raise error.orig from error
            raise BackendError(
                f"the {self.role} store could not run a statement: {error}"
            ) from error
        except exc.SQLAlchemyError as error:
            raise BackendError(f"the {self.role} store failed: {error}") from error

    def _check_fence(self, connection: sa.Connection) -> None:
        """Under a fence on this database, commit only while its execution still runs.

        Checked last, in the transaction: SQLite holds the database's write lock since
        ``BEGIN IMMEDIATE``; PostgreSQL locks the execution's row (``FOR SHARE``) until the
        commit, so a claim taking the work over waits for it, or this sees it taken over.
        """
        fence = current_fence()
        if fence is None or fence.scope != self.fence_scope:
            return
        query = sa.select(stage_executions.c.status, stage_executions.c.error).where(
            stage_executions.c.execution_id == fence.execution_id
        )
        if self.dialect == "postgresql":
            query = query.with_for_update(read=True)
        row = connection.execute(query).first()
        if row is None or row.status != "running":
            why = "it is not recorded" if row is None else f"it is {row.status}: {row.error}"
            raise LeaseLostError(
                f"execution {fence.execution_id} no longer holds its work ({why}); "
                "its write was refused"
            )

    def _unavailable(self, error: exc.DBAPIError) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"cannot reach the {self.role} store at {self.masked_url}: {error.orig}"
        )

    def _require_engine(self) -> sa.Engine:
        if self._engine is None:
            raise BackendError(
                f"the {self.role} store at {self.masked_url} is not open; call open() first"
            )
        return self._engine


def _parse(raw: str, role: str) -> URL:
    try:
        url = make_url(raw)
    except exc.ArgumentError as error:
        raise ConfigError(f"{mask_url(raw)!r} is not a database URL: {error}") from error
    backend = url.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ConfigError(
                f"the {role} store needs a SQLite file shared by every process, "
                f"not {mask_url(raw)!r}; use sqlite:///path/to/{role}.db"
            )
        return url
    if backend != "postgresql":
        raise UnknownBackendError(
            f"no {role} store for URL scheme {url.drivername!r} in {mask_url(raw)!r}; "
            "known: sqlite (sqlite:///path.db), postgresql (postgresql+psycopg://...)"
        )
    driver = url.get_driver_name() if "+" in url.drivername else "psycopg"
    if driver == "psycopg" and importlib.util.find_spec("psycopg") is None:
        raise MissingExtraError(
            f"the postgres {role} store needs the psycopg driver; "
            "install it with: pip install 'gristmill[postgres]'"
        )
    return url.set(drivername=f"postgresql+{driver}")


def _sqlite_engine(url: URL) -> sa.Engine:
    if url.database is None:
        raise ConfigError("a SQLite URL needs a file path")
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: the "begin" hook below emits BEGIN itself. The
        # busy timeout comes from the driver's ``timeout`` argument.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _enable_wal(cursor: Any) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite reports "database is
    # locked" at once (no busy handler) while another connection is switching it: retry.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01 + random.random() * 0.04)
