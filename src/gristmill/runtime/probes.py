"""Read-only checks of the configured backends, for ``gristmill doctor``.

A check changes nothing: no folder or database file is created, no migration runs, no
SQLite journal is written (a file is read as ``immutable``, so not even a ``-shm`` or
``-wal`` file appears). What does not exist yet is reported as made at first use, when the
folder it would go in can be written. A service (Redis, NATS, PostgreSQL) is connected to
and asked what it holds, as any command would; nothing is written on this machine.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gristmill.config.settings import Settings
from gristmill.errors import BackendError

NOT_YET = "not created yet (its first use creates it"
_TABLE = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?"


def check_bus(settings: Settings, timeout: float) -> str:
    """The bus: its SQLite file read, or its server reached."""
    if settings.bus.backend == "sqlite":
        return _sqlite_file(Path(settings.bus_url()))
    from gristmill.runtime.wiring import build_bus

    async def reach() -> None:
        bus = build_bus(settings)
        await asyncio.wait_for(bus.open(), timeout)
        await bus.close()

    asyncio.run(reach())
    return "reachable"


def check_metadata(settings: Settings) -> str:
    """The metadata store: reachable, and whether its tables are at the newest migration."""
    from sqlalchemy.engine import make_url

    from gristmill.backends.sql.database import SqlDatabase
    from gristmill.backends.sql.migrations.runner import at_head
    from gristmill.backends.sql.schema_version import VERSION_TABLE, head_revision

    url = settings.metadata_url()
    if settings.metadata.backend == "sqlite":
        path = Path(make_url(url).database or "")
        state = _sqlite_file(path)
        if state.startswith(NOT_YET):
            return state
        with _read_only(path) as connection:
            tables = connection.execute(_TABLE, (VERSION_TABLE,)).fetchall()
            found = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}") if tables else []
            current = [row[0] for row in found]
        return _migrations(current == [head_revision()])
    database = SqlDatabase(url, schema=settings.metadata.db_schema)
    database.open()
    try:
        with database.read() as connection:
            return _migrations(at_head(connection, settings.metadata.db_schema))
    finally:
        database.close()


def check_online(settings: Settings) -> str:
    """The online feature store: its SQLite file read, or its server reached."""
    if settings.online.backend == "sqlite":
        return _sqlite_file(Path(settings.online_url()))
    from gristmill.runtime.wiring import build_online

    store = build_online(settings)
    store.open()
    store.close()
    return "reachable"


def check_folder(url: str) -> str:
    """A folder of files: writable, or where it would be made is writable."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    if "://" in url and not url.startswith("file://"):
        return "reachable" if fs.exists(path) else f"{NOT_YET})"
    folder = Path(path)
    if folder.is_dir():
        if not os.access(folder, os.W_OK | os.X_OK):
            raise BackendError(f"{folder} is not writable by this user")
        return "writable"
    return _creatable(folder)


def _sqlite_file(path: Path) -> str:
    if not path.exists():
        return _creatable(path)
    with _read_only(path) as connection:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if not os.access(path, os.W_OK):
        raise BackendError(f"{path} is not writable by this user")
    return "reachable"


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A SQLite connection that reads ``path`` as it is and can write nothing."""
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise BackendError(f"cannot open {path}: {exc}") from exc
    try:
        yield connection
    except sqlite3.Error as exc:
        raise BackendError(f"{path} is not a readable SQLite database: {exc}") from exc
    finally:
        connection.close()


def _creatable(path: Path) -> str:
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if os.access(parent, os.W_OK | os.X_OK):
        return f"{NOT_YET}; {parent} is writable)"
    raise BackendError(f"{path} cannot be created: {parent} is not writable by this user")


def _migrations(at_head: bool) -> str:
    if at_head:
        return "reachable, migrations applied"
    return "reachable; migrations pending (the next command that opens it applies them)"
