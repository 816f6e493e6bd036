"""SQL adapters (SQLite, PostgreSQL through SQLAlchemy Core): the metadata store."""

from gristmill.backends.sql.metadata import SqlMetadataStore

__all__ = ["SqlMetadataStore"]
