"""Alembic migrations of the SQL metadata store, applied by ``SqlMetadataStore.open``."""

from gristmill.backends.sql.migrations.runner import VERSION_TABLE, upgrade_to_head

__all__ = ["VERSION_TABLE", "upgrade_to_head"]
