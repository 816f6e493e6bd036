"""Apply the metadata store's Alembic migrations programmatically, once across processes.

Several workers may open the store at the same moment; the first to take the migration lock
upgrades the schema and the others then find it at head. The lock is the write transaction
itself on SQLite (``BEGIN IMMEDIATE``) and a transaction-scoped advisory lock on PostgreSQL.

A store already at head (every open but the first after an upgrade of gristmill) is told by
one read of the version table (``at_head``), without Alembic: importing it and loading the
migration scripts takes longer than a ``gristmill ls`` has to answer.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa

from gristmill.backends.sql.schema_version import VERSION_TABLE, head_revision
from gristmill.errors import BackendError

SCRIPT_LOCATION = "gristmill.backends.sql:migrations"


def at_head(connection: sa.Connection, schema: str | None) -> bool:
    """Whether the tables reached through ``connection`` are at the newest revision (a
    read: no lock, nothing written)."""
    head = head_revision()
    if head is None or not sa.inspect(connection).has_table(VERSION_TABLE, schema=schema):
        return False
    version = sa.table(VERSION_TABLE, sa.column("version_num"), schema=schema)
    return list(connection.execute(sa.select(version.c.version_num)).scalars()) == [head]


def upgrade_to_head(
    connection: sa.Connection, schema: str | None, *, revision: str = "head"
) -> None:
    """Bring the tables reached through ``connection`` to the newest revision.

    ``connection`` must be inside a write transaction; ``schema`` (PostgreSQL) is created if
    missing and receives every table, the version table included. ``revision`` stops at an
    older revision instead (tests build an old database to migrate it).
    """
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    if connection.dialect.name == "postgresql":
        key = zlib.crc32(f"gristmill.metadata:{schema or ''}".encode())
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        # Checked first: CREATE SCHEMA needs a privilege that a user of an existing one may lack.
        if schema is not None and not sa.inspect(connection).has_schema(schema):
            connection.execute(sa.schema.CreateSchema(schema))
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    try:
        command.upgrade(config, revision)
    except CommandError as error:
        raise BackendError(
            f"cannot migrate the metadata tables: {error}; if a newer gristmill made them, "
            "upgrade this one"
        ) from error
