"""``ParquetScoreStore``: batch scores as Parquet partitions on any fsspec filesystem.

Layout: ``<root>/<job_id>/part-00000.parquet …`` and ``<root>/<job_id>/_manifest.json``,
written last. A partition is written to ``<root>/<job_id>/.tmp-part-00000-<id>.parquet``
and renamed into place unless that name is taken: a partition is committed once, whoever
writes it. Temporary files left by a killed writer are never read and are removed when the
job commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.backends.parquet.filesystem import open_filesystem
from gristmill.core.ids import new_id
from gristmill.errors import NotFoundError

MANIFEST = "_manifest.json"
_TMP_PREFIX = ".tmp-"
_STATS = b"gristmill.partition"


def partition_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth a Parquet dictionary: text (ids, keys, class labels) and columns
    Arrow holds dictionary-encoded. Numbers are written plain: a dictionary of distinct
    probabilities is built, found too large and dropped, for every page (twice the time)."""
    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_dictionary)
    return [f.name for f in schema if any(kind(f.type) for kind in kinds)]


class ParquetScoreStore:
    """The score store under ``root`` (a path or fsspec URL). The constructor does no I/O and
    the store pickles as its root alone (executor tasks carry it to other processes)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._fs: tuple[Any, str, Any] | None = None

    def __repr__(self) -> str:
        return f"ParquetScoreStore({self.root!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    def _filesystem(self) -> tuple[Any, str, Any]:
        if self._fs is None:
            self._fs = open_filesystem(self.root)
        return self._fs

    def _folder(self, job_id: str) -> str:
        _, root, _ = self._filesystem()
        return f"{root}/{job_id}"

    def location(self, job_id: str) -> str:
        return f"{self.root.rstrip('/')}/{job_id}"

    def committed(self, job_id: str) -> dict[int, dict[str, Any]]:
        fs, _, arrow = self._filesystem()
        folder = self._folder(job_id)
        if not fs.exists(folder):
            return {}
        found: dict[int, dict[str, Any]] = {}
        for path in fs.ls(folder, detail=False):
            name = str(path).rsplit("/", 1)[-1]
            if name.startswith("part-") and name.endswith(".parquet"):
                schema = pq.read_schema(f"{folder}/{name}", filesystem=arrow)
                stats = (schema.metadata or {}).get(_STATS, b"{}")
                found[int(name[len("part-") : -len(".parquet")])] = json.loads(stats)
        return found

    def write_partition(
        self, job_id: str, index: int, table: pa.Table, stats: dict[str, Any]
    ) -> bool:
        fs, _, arrow = self._filesystem()
        folder = self._folder(job_id)
        final = f"{folder}/{partition_name(index)}"
        if fs.exists(final):
            return False
        fs.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/{_TMP_PREFIX}{partition_name(index)}-{new_id()}"
        metadata = {**(table.schema.metadata or {}), _STATS: json.dumps(stats, default=str)}
        pq.write_table(
            table.replace_schema_metadata(metadata),
            temporary,
            filesystem=arrow,
            use_dictionary=dictionary_columns(table.schema),
        )
        if fs.exists(final):  # another writer committed it meanwhile: keep theirs
            fs.rm(temporary)
            return False
        fs.mv(temporary, final)
        return True

    def commit(self, job_id: str, manifest: dict[str, Any]) -> str:
        fs, _, _ = self._filesystem()
        folder = self._folder(job_id)
        fs.makedirs(folder, exist_ok=True)
        for leftover in fs.ls(folder, detail=False):
            if str(leftover).rsplit("/", 1)[-1].startswith(_TMP_PREFIX):
                fs.rm(leftover)
        temporary = f"{folder}/{_TMP_PREFIX}{MANIFEST}-{new_id()}"
        with fs.open(temporary, "w") as handle:
            handle.write(json.dumps(manifest, default=str, indent=1))
        fs.mv(temporary, f"{folder}/{MANIFEST}")
        return f"{self.location(job_id)}/{MANIFEST}"

    def manifest(self, job_id: str) -> dict[str, Any] | None:
        fs, _, _ = self._filesystem()
        path = f"{self._folder(job_id)}/{MANIFEST}"
        if not fs.exists(path):
            return None
        with fs.open(path, "r") as handle:
            body: dict[str, Any] = json.load(handle)
        return body

    def read(self, job_id: str) -> pa.Table:
        tables = list(self.partitions(job_id))
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="permissive")

    def partitions(self, job_id: str) -> Iterator[pa.Table]:
        manifest = self.manifest(job_id)
        if manifest is None:
            raise NotFoundError(
                f"score job {job_id} has no committed scores (it is running, failed or "
                "unknown); see `gristmill jobs " + job_id + "`"
            )
        _, _, arrow = self._filesystem()
        folder = self._folder(job_id)
        return (
            _read_file(f"{folder}/{partition_name(int(i))}", arrow)
            for i in manifest.get("partitions", [])
        )


def _read_file(path: str, filesystem: Any) -> pa.Table:
    """One Parquet file (``pq.read_table`` would build a dataset: pyarrow then imports pandas)."""
    with pq.ParquetFile(path, filesystem=filesystem) as handle:
        return handle.read()
