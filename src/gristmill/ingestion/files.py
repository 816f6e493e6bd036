"""Input files through fsspec: locate them, digest their bytes, open them for pyarrow."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import fsspec
import pyarrow as pa
from fsspec.implementations.local import LocalFileSystem

from gristmill.errors import DataError

T = TypeVar("T")

_CHUNK = 1 << 20


@dataclass(frozen=True)
class InputFile:
    """One input file: its URL (as shown to users), its filesystem and path, size and mtime."""

    url: str
    fs: Any
    path: str
    size: int
    mtime: float | None

    @property
    def local(self) -> bool:
        """On the local filesystem, so pyarrow can read the path natively (and in parallel)."""
        return isinstance(self.fs, LocalFileSystem)

    def source(self) -> Any:
        """What to hand a pyarrow reader: the local path, or an open fsspec file."""
        return self.path if self.local else self.fs.open(self.path, "rb")

    def identity(self) -> dict[str, Any]:
        """Cheap content identity (path, size, mtime) — the digest is the real one."""
        return {"url": self.url, "size": self.size, "mtime": self.mtime}


def stat_file(url: str) -> InputFile:
    """The file at ``url``; ``DataError`` if it is missing, a folder or unreadable."""
    fs, path = _filesystem(url)
    info = translate_errors(url, lambda: fs.info(path))
    if info.get("type") != "file":
        raise DataError(
            f"{url} is a {info.get('type', 'special file')}, not a file; point the source's "
            "`path` at a file, or use `format: folder` for a folder of files",
            file=url,
        )
    return _input_file(fs, path, url, info)


def list_folder(url: str, pattern: str) -> list[InputFile]:
    """The files in the folder ``url`` matching the glob ``pattern``, sorted by path."""
    fs, path = _filesystem(url)
    info = translate_errors(url, lambda: fs.info(path))
    if info.get("type") != "directory":
        raise DataError(
            f"{url} is not a folder; a `format: folder` source needs the folder's path",
            file=url,
        )
    found = translate_errors(url, lambda: fs.glob(f"{path.rstrip('/')}/{pattern}", detail=True))
    return [
        _input_file(fs, name, fs.unstrip_protocol(name), entry)
        for name, entry in sorted(found.items())
        if entry.get("type") == "file"
    ]


def digest_file(file: InputFile) -> str:
    """``sha256:<hex>`` of the file's bytes, read in 1 MiB chunks."""

    def digest() -> str:
        sha = hashlib.sha256()
        with file.fs.open(file.path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                sha.update(chunk)
        return "sha256:" + sha.hexdigest()

    return translate_errors(file.url, digest)


def translate_errors(url: str, action: Callable[[], T]) -> T:
    """Run ``action``; a missing or unreadable file becomes a ``DataError`` naming ``url``."""
    try:
        return action()
    except FileNotFoundError as exc:
        raise DataError(
            f"cannot read {url}: no such file or folder; check the source's `path`", file=url
        ) from exc
    except PermissionError as exc:
        raise DataError(
            f"cannot read {url}: permission denied; make it readable by this user", file=url
        ) from exc
    except (OSError, pa.ArrowIOError) as exc:
        raise DataError(f"cannot read {url}: {exc}", file=url) from exc


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as exc:
        raise DataError(f"cannot open {url}: {exc}", file=url) from exc


def _input_file(fs: Any, path: str, url: str, info: dict[str, Any]) -> InputFile:
    mtime = info.get("mtime")
    return InputFile(
        url=url,
        fs=fs,
        path=path,
        size=int(info.get("size") or 0),
        mtime=float(mtime) if isinstance(mtime, int | float) else None,
    )
