"""The raw store contract on the Parquet adapter: local disk, and fsspec's memory filesystem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from gristmill.backends.parquet.raw import ParquetRawStore
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.testing.raw_store_contract import RawStoreContract


class TestLocalParquetRawStore(RawStoreContract):
    __test__ = True

    @pytest.fixture
    def raw_store(self, tmp_path: Path) -> Iterator[ParquetRawStore]:
        with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as metadata:
            yield ParquetRawStore(str(tmp_path / "raw"), metadata.batches)


class TestMemoryParquetRawStore(RawStoreContract):
    """The same code on ``memory://``: proves the fsspec path (object storage works alike)."""

    __test__ = True

    @pytest.fixture
    def raw_store(self, tmp_path: Path, namespace: str) -> Iterator[ParquetRawStore]:
        with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as metadata:
            yield ParquetRawStore(f"memory://{namespace}/raw", metadata.batches)
        memory = fsspec.filesystem("memory")
        if memory.exists(f"/{namespace}"):
            memory.rm(f"/{namespace}", recursive=True)
