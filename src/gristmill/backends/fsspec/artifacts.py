"""``FsspecArtifactStore``: artifacts as files named by digest, on any fsspec filesystem.

Layout: ``<root>/<kind>/<sha256 hex>`` holds the bytes and ``<root>/<kind>/<hex>.json`` their
media type. Each file is written to a temporary name and renamed into place, the bytes last,
so an artifact is visible only whole; a crash leaves at most a temporary file. Writing the
same bytes again finds them and writes nothing (unless the stored copy was damaged, which it
replaces). Every read is checked against the digest it was asked for.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import fsspec

from gristmill.core.ids import digest_bytes
from gristmill.errors import BackendError, ConfigError, ConflictError, NotFoundError
from gristmill.stores.artifacts import ArtifactRef

DEFAULT_ROOT = ".gristmill/artifacts"
DEFAULT_MEDIA_TYPE = "application/octet-stream"
_KIND = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_TMP_PREFIX = ".tmp-"


class FsspecArtifactStore:
    """The artifact store on a local folder, ``memory://``, ``s3://`` … (any fsspec URL).

    The constructor does no I/O; ``open()`` creates the root (``put`` also works unopened).
    A ``kind`` is a lowercase name (``feature-pipeline``, ``model``); anything else (a slash,
    ``..``) is a ``ConfigError``. Filesystem failures other than absence are a
    ``BackendError`` with the cause chained.
    """

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = root
        self._fs: tuple[Any, str] | None = None

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self.root!r})"

    def open(self) -> FsspecArtifactStore:
        fs, root = self._filesystem()
        with _translated(f"cannot create the artifact store at {self.root!r}"):
            fs.makedirs(root, exist_ok=True)
        return self

    def close(self) -> None:
        self._fs = None

    def __enter__(self) -> FsspecArtifactStore:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def put(self, data: bytes, *, kind: str, media_type: str = DEFAULT_MEDIA_TYPE) -> ArtifactRef:
        """Store ``data`` under its digest; the same bytes of the same kind return one ref."""
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise ConfigError(
                f"artifact kind {kind!r} must be a lowercase name (letters, digits, _ . -)"
            )
        digest = digest_bytes(data)
        existing = self._stored(kind, digest)
        if existing is not None:
            return existing
        fs, root = self._filesystem()
        folder, name = f"{root}/{kind}", digest.removeprefix("sha256:")
        meta = {"kind": kind, "digest": digest, "media_type": media_type, "size": len(data)}
        with _translated(f"cannot write artifact {digest} to {self.root!r}"):
            fs.makedirs(folder, exist_ok=True)
            _write(fs, f"{folder}/{name}.json", json.dumps(meta).encode())
            _write(fs, f"{folder}/{name}", data)
        return self._ref(kind, digest, media_type, len(data))

    def get(self, ref: ArtifactRef) -> bytes:
        """The bytes of ``ref``; ``NotFoundError`` if absent, ``ConflictError`` if they differ."""
        path = self._path(ref.kind, ref.digest)
        if path is None:
            raise NotFoundError(f"no artifact {ref.digest!r} of kind {ref.kind!r}")
        fs, _ = self._filesystem()
        try:
            with _translated(f"cannot read artifact {ref.digest}"):
                data: bytes = fs.cat_file(path)
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"no artifact {ref.digest!r} of kind {ref.kind!r} in {self.root!r}"
            ) from exc
        actual = digest_bytes(data)
        if actual != ref.digest:
            raise ConflictError(
                f"artifact {ref.digest} in {self.root!r} has content with digest {actual}: "
                "it was damaged or replaced; refusing to return it"
            )
        return data

    def find(self, digest: str) -> ArtifactRef | None:
        """The stored artifact with ``digest`` (of the first kind by name), or ``None``."""
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            return None
        fs, root = self._filesystem()
        with _translated(f"cannot list the artifact store {self.root!r}"):
            try:
                kinds = sorted(fs.ls(root, detail=False))
            except FileNotFoundError:
                return None
        for folder in kinds:
            kind = folder.rstrip("/").rsplit("/", 1)[-1]
            if _KIND.match(kind):
                found = self._stored(kind, digest, verify=False)
                if found is not None:
                    return found
        return None

    # -- internals ------------------------------------------------------------------------

    def _filesystem(self) -> tuple[Any, str]:
        if self._fs is None:
            try:
                fs, path = fsspec.core.url_to_fs(self.root)
            except (ValueError, ImportError) as exc:
                raise ConfigError(
                    f"artifact store root {self.root!r} is not usable: {exc}"
                ) from exc
            self._fs = (fs, path.rstrip("/") or "/")
        return self._fs

    def _path(self, kind: str, digest: str) -> str | None:
        match = _DIGEST.match(digest) if isinstance(digest, str) else None
        if match is None or not isinstance(kind, str) or not _KIND.match(kind):
            return None
        return f"{self._filesystem()[1]}/{kind}/{match.group(1)}"

    def _stored(self, kind: str, digest: str, *, verify: bool = True) -> ArtifactRef | None:
        """The ref of an intact stored copy (checked when ``verify``), or ``None``."""
        path = self._path(kind, digest)
        fs, _ = self._filesystem()
        with _translated(f"cannot read artifact {digest}"):
            if path is None or not fs.exists(path):
                return None
            if verify and digest_bytes(fs.cat_file(path)) != digest:
                return None
            size = int(fs.size(path))
            try:
                meta = json.loads(fs.cat_file(f"{path}.json"))
            except (FileNotFoundError, ValueError):
                meta = {}
        return self._ref(kind, digest, str(meta.get("media_type", DEFAULT_MEDIA_TYPE)), size)

    def _ref(self, kind: str, digest: str, media_type: str, size: int) -> ArtifactRef:
        fs, _ = self._filesystem()
        uri = str(fs.unstrip_protocol(self._path(kind, digest)))
        return ArtifactRef(uri=uri, digest=digest, kind=kind, media_type=media_type, size=size)


def _write(fs: Any, path: str, data: bytes) -> None:
    folder, name = path.rsplit("/", 1)
    temporary = f"{folder}/{_TMP_PREFIX}{name}-{uuid.uuid4().hex}"
    fs.pipe_file(temporary, data)
    try:
        fs.mv(temporary, path)
    except BaseException:
        if fs.exists(temporary):
            fs.rm_file(temporary)
        raise


@contextmanager
def _translated(message: str) -> Iterator[None]:
    """Turn a filesystem ``OSError`` (absence aside) into a chained ``BackendError``."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise BackendError(f"{message}: {exc}") from exc
