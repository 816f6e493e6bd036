"""The OfflineFeatureStore contract on the Parquet adapter: local disk and fsspec's memory://."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from gristmill.backends.parquet.features import ParquetOfflineStore
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.testing.offline_contract import OfflineFeatureStoreContract, feature_set, features


class TestLocalParquetOfflineStore(OfflineFeatureStoreContract):
    __test__ = True

    @pytest.fixture
    def offline_store(self, tmp_path: Path) -> Iterator[ParquetOfflineStore]:
        with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as metadata:
            yield ParquetOfflineStore(str(tmp_path / "features"), metadata.feature_sets)

    def test_the_files_are_where_the_manifest_says(
        self, offline_store: ParquetOfflineStore, tmp_path: Path
    ) -> None:
        stored = offline_store.write(feature_set(), features())
        directory = tmp_path / "features" / "clients" / "fs-1"
        assert stored.location == f"file://{directory}"
        assert [p.name for p in (tmp_path / "features" / "clients").iterdir()] == ["fs-1"]


class TestMemoryParquetOfflineStore(OfflineFeatureStoreContract):
    """The same code on ``memory://``: proves the fsspec path (object storage works alike)."""

    __test__ = True

    @pytest.fixture
    def offline_store(self, tmp_path: Path, namespace: str) -> Iterator[ParquetOfflineStore]:
        with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as metadata:
            yield ParquetOfflineStore(f"memory://{namespace}/features", metadata.feature_sets)
        memory = fsspec.filesystem("memory")
        if memory.exists(f"/{namespace}"):
            memory.rm(f"/{namespace}", recursive=True)
