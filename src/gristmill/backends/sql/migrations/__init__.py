"""Alembic migrations of the SQL metadata store, applied by ``SqlMetadataStore.open``."""

from gristmill.backends.sql.migrations.runner import at_head, upgrade_to_head
from gristmill.backends.sql.schema_version import VERSION_TABLE, head_revision

__all__ = ["VERSION_TABLE", "at_head", "head_revision", "upgrade_to_head"]
