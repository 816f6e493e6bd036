"""Alembic migrations of the SQL metadata store, applied by ``SqlMetadataStore.open``."""

from gristmill.backends.sql.migrations.runner import (
    VERSION_TABLE,
    at_head,
    head_revision,
    upgrade_to_head,
)

__all__ = ["VERSION_TABLE", "at_head", "head_revision", "upgrade_to_head"]
