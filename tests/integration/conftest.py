"""Embedded stores for integration tests: a SQLite metadata store and a local raw store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.backends.parquet.raw import ParquetRawStore
from gristmill.backends.sql.metadata import SqlMetadataStore


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as store:
        yield store


@pytest.fixture
def raw(tmp_path: Path, metadata: SqlMetadataStore) -> ParquetRawStore:
    return ParquetRawStore(str(tmp_path / "raw"), metadata.batches)
