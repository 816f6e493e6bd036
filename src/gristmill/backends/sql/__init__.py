"""SQL adapters (SQLite, PostgreSQL through SQLAlchemy Core): the metadata store,
``metadata.SqlMetadataStore``.

Nothing is imported here: each adapter module imports SQLAlchemy itself, so the modules
that need none (``schema_version``) load without it.
"""
