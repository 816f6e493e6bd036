"""Alembic environment: migrate the connection ``runner.upgrade_to_head`` hands over.

Runs only programmatically (there is no ``alembic.ini``); the connection is already inside
a transaction holding the migration lock, so Alembic joins it instead of opening its own.
"""

from __future__ import annotations

from alembic import context

from gristmill.backends.sql.schema_version import VERSION_TABLE

_config = context.config
context.configure(
    connection=_config.attributes["connection"],
    version_table=VERSION_TABLE,
    version_table_schema=_config.attributes.get("schema"),
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
