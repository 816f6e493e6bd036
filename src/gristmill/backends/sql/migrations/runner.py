"""Apply the metadata store's Alembic migrations programmatically, once across processes.

Several workers may open the store at the same moment; the first to take the migration lock
upgrades the schema and the others then find it at head. The lock is the write transaction
itself on SQLite (``BEGIN IMMEDIATE``) and a transaction-scoped advisory lock on PostgreSQL.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError

from gristmill.errors import BackendError

# Own version table, so another Alembic-managed app in the same schema does not collide.
VERSION_TABLE = "gristmill_metadata_version"
SCRIPT_LOCATION = "gristmill.backends.sql:migrations"


def upgrade_to_head(
    connection: sa.Connection, schema: str | None, *, revision: str = "head"
) -> None:
    """Bring the tables reached through ``connection`` to the newest revision.

    ``connection`` must be inside a write transaction; ``schema`` (PostgreSQL) is created if
    missing and receives every table, the version table included. ``revision`` stops at an
    older revision instead (tests build an old database to migrate it).
    """
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
