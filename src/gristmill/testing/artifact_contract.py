"""The contract every ``ArtifactStore`` backend passes: subclass, provide one fixture, run.

::

    class TestLocalArtifactStore(ArtifactStoreContract):
        __test__ = True

        @pytest.fixture
        def artifact_store(self, tmp_path):
            with FsspecArtifactStore(str(tmp_path / "artifacts")) as store:
                yield store

        def corrupt(self, store, ref):
            fs, path = fsspec.core.url_to_fs(ref.uri)
            fs.pipe_file(path, b"tampered")

``artifact_store`` yields a fresh, empty store and cleans up after the test. ``corrupt``
damages the stored bytes of a reference behind the store's back; a backend that offers no
way to do so leaves it, and the tests that need it are skipped with that reason.
"""

from __future__ import annotations

import hashlib
import threading

import pytest

from gristmill.errors import ConflictError, NotFoundError
from gristmill.stores.artifacts import ArtifactRef, ArtifactStore

ABSENT = "sha256:" + "0" * 64


class ArtifactStoreContract:
    """Behaviour every artifact store shows; ``artifact_store`` is the fixture to provide."""

    __test__ = False

    @pytest.fixture
    def artifact_store(self) -> ArtifactStore:
        raise NotImplementedError("a backend's test class provides the artifact_store fixture")

    def corrupt(self, store: ArtifactStore, ref: ArtifactRef) -> None:
        """Replace the stored bytes of ``ref`` with others, behind the store's back."""
        pytest.skip(f"{type(self).__name__} provides no way to damage a stored artifact")

    def test_put_then_get_returns_the_bytes(self, artifact_store: ArtifactStore) -> None:
        data = b"fitted pipeline \x00\xff bytes"
        ref = artifact_store.put(data, kind="feature-pipeline", media_type="application/x-skops")
        assert ref.digest == "sha256:" + hashlib.sha256(data).hexdigest()
        assert (ref.kind, ref.media_type) == ("feature-pipeline", "application/x-skops")
        assert ref.size == len(data)
        assert ref.uri
        assert artifact_store.get(ref) == data

    def test_the_same_bytes_again_return_the_same_reference(
        self, artifact_store: ArtifactStore
    ) -> None:
        first = artifact_store.put(b"once", kind="model")
        assert artifact_store.put(b"once", kind="model") == first
        other = artifact_store.put(b"twice", kind="model")
        assert other.digest != first.digest
        assert artifact_store.get(first) == b"once"
        assert artifact_store.get(other) == b"twice"

    def test_the_same_bytes_under_two_kinds_are_both_kept(
        self, artifact_store: ArtifactStore
    ) -> None:
        model = artifact_store.put(b"shared", kind="model")
        image = artifact_store.put(b"shared", kind="image", media_type="image/png")
        assert model.digest == image.digest and model.kind != image.kind
        assert artifact_store.get(model) == artifact_store.get(image) == b"shared"

    def test_find_by_digest(self, artifact_store: ArtifactStore) -> None:
        ref = artifact_store.put(b"findable", kind="report", media_type="application/json")
        assert artifact_store.find(ref.digest) == ref
        assert artifact_store.find(ABSENT) is None
        assert artifact_store.find("not-a-digest") is None

    def test_find_in_an_empty_store_is_none(self, artifact_store: ArtifactStore) -> None:
        assert artifact_store.find(ABSENT) is None

    def test_an_absent_artifact_is_not_found(self, artifact_store: ArtifactStore) -> None:
        ref = ArtifactRef(uri="nowhere", digest=ABSENT, kind="model")
        with pytest.raises(NotFoundError, match="0000"):
            artifact_store.get(ref)
        stored = artifact_store.put(b"here", kind="model")
        with pytest.raises(NotFoundError):
            artifact_store.get(ArtifactRef(uri=stored.uri, digest=stored.digest, kind="image"))

    def test_empty_and_large_artifacts(self, artifact_store: ArtifactStore) -> None:
        empty = artifact_store.put(b"", kind="model")
        assert (empty.size, artifact_store.get(empty)) == (0, b"")
        large = bytes(range(256)) * 20_000  # about 5 MB
        ref = artifact_store.put(large, kind="model")
        assert ref.size == len(large)
        assert artifact_store.get(ref) == large

    def test_damaged_bytes_are_refused(self, artifact_store: ArtifactStore) -> None:
        ref = artifact_store.put(b"original", kind="model")
        self.corrupt(artifact_store, ref)
        with pytest.raises(ConflictError, match=ref.digest):
            artifact_store.get(ref)

    def test_putting_again_repairs_damaged_bytes(self, artifact_store: ArtifactStore) -> None:
        ref = artifact_store.put(b"original", kind="model")
        self.corrupt(artifact_store, ref)
        assert artifact_store.put(b"original", kind="model") == ref
        assert artifact_store.get(ref) == b"original"

    def test_a_reference_with_a_wrong_digest_is_never_served(
        self, artifact_store: ArtifactStore
    ) -> None:
        ref = artifact_store.put(b"real", kind="model")
        forged = ArtifactRef(uri=ref.uri, digest=ABSENT, kind=ref.kind)
        with pytest.raises((NotFoundError, ConflictError)):
            artifact_store.get(forged)

    def test_concurrent_writers_of_the_same_bytes_agree(
        self, artifact_store: ArtifactStore
    ) -> None:
        data = b"raced" * 10_000
        refs: list[ArtifactRef] = []
        barrier = threading.Barrier(4)

        def write() -> None:
            barrier.wait()
            refs.append(artifact_store.put(data, kind="model"))

        threads = [threading.Thread(target=write) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(refs) == 4 and len(set(refs)) == 1
        assert artifact_store.get(refs[0]) == data
