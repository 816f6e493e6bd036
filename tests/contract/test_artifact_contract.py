"""The artifact store contract on the fsspec adapter: local disk, and fsspec's memory filesystem.

Below the suite: what only this adapter promises (its layout, no I/O before use, kind names).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from gristmill.backends.fsspec import FsspecArtifactStore
from gristmill.errors import ConfigError
from gristmill.stores.artifacts import ArtifactRef, ArtifactStore
from gristmill.testing.artifact_contract import ArtifactStoreContract


class _FsspecCorruption:
    def corrupt(self, store: ArtifactStore, ref: ArtifactRef) -> None:
        fs, path = fsspec.core.url_to_fs(ref.uri)
        fs.pipe_file(path, b"tampered")


class TestLocalArtifactStore(_FsspecCorruption, ArtifactStoreContract):
    __test__ = True

    @pytest.fixture
    def artifact_store(self, tmp_path: Path) -> Iterator[FsspecArtifactStore]:
        with FsspecArtifactStore(str(tmp_path / "artifacts")) as store:
            yield store


class TestMemoryArtifactStore(_FsspecCorruption, ArtifactStoreContract):
    """The same code on ``memory://``: proves the fsspec path (object storage works alike)."""

    __test__ = True

    @pytest.fixture
    def artifact_store(self, namespace: str) -> Iterator[FsspecArtifactStore]:
        with FsspecArtifactStore(f"memory://{namespace}/artifacts") as store:
            yield store
        memory = fsspec.filesystem("memory")
        if memory.exists(f"/{namespace}"):
            memory.rm(f"/{namespace}", recursive=True)


def test_the_constructor_does_no_io(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    store = FsspecArtifactStore(str(root))
    assert not root.exists()
    assert store.find("sha256:" + "0" * 64) is None
    store.open()
    assert root.is_dir()


def test_layout_is_kind_then_digest(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    ref = store.put(b"abc", kind="model", media_type="application/x-skops")
    hexdigest = ref.digest.removeprefix("sha256:")
    assert (tmp_path / "model" / hexdigest).read_bytes() == b"abc"
    assert ref.uri == f"file://{tmp_path}/model/{hexdigest}"
    assert not [p for p in (tmp_path / "model").iterdir() if p.name.startswith(".tmp-")]
    # The media type survives a new store object on the same root.
    assert FsspecArtifactStore(str(tmp_path)).find(ref.digest) == ref


@pytest.mark.parametrize("kind", ["", "../escape", "a/b", "Model", "."])
def test_a_kind_must_be_a_plain_name(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ConfigError, match="kind"):
        FsspecArtifactStore(str(tmp_path)).put(b"x", kind=kind)
