"""``ParquetRawStore``: raw batches as directories of Parquet parts, on any fsspec filesystem.

Layout: ``<root>/<source>/<batch_id>/part-00000.parquet …`` plus ``quarantine.parquet`` when
rows were rejected. A batch is written into ``<root>/<source>/.tmp-<batch_id>/`` (parts in
parallel), renamed into place, and only then recorded in the ``BatchCatalog``, which is the
truth: after a crash there is at most an invisible temporary or orphan directory, which
``sweep`` removes once it is older than ``stale_after`` seconds.
"""

from __future__ import annotations

import builtins
import logging
import os
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.backends.parquet.filesystem import modified_age, open_filesystem
from gristmill.core.ids import new_id
from gristmill.core.schema import schema_fields, schema_fingerprint
from gristmill.errors import ConfigError, DataError, EmptyInputError, NotFoundError
from gristmill.stores.raw import BatchCatalog, RawBatch, WrittenBatch

logger = logging.getLogger(__name__)

DEFAULT_ROOT = ".gristmill/raw"
QUARANTINE_FILE = "quarantine.parquet"
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class _Parts:
    schema: pa.Schema
    names: list[str]
    rows: int


class ParquetRawStore:
    """The raw store on Parquet files through fsspec (local disk, ``memory://``, ``s3://`` …).

    ``max_workers`` threads write the parts of a batch (pyarrow releases the GIL); default:
    the number of CPUs, at most 8. At most twice that many parts are held in memory at once,
    so a streamed input is written with bounded memory. The constructor does no I/O.
    """

    def __init__(
        self,
        root: str,
        catalog: BatchCatalog,
        *,
        max_workers: int | None = None,
        stale_after: float = 3600.0,
    ) -> None:
        self.root = root
        self.catalog = catalog
        self.max_workers = max_workers
        self.stale_after = stale_after
        self._fs: tuple[Any, str, Any] | None = None

    def __repr__(self) -> str:
        return f"ParquetRawStore({self.root!r}, max_workers={self.max_workers!r})"

    def write_batch(
        self,
        source: str,
        parts: Iterable[pa.Table],
        *,
        content_digest: str,
        origin: str = "",
        run_id: str | None = None,
        quarantine: pa.Table | None = None,
    ) -> WrittenBatch:
        """Write ``parts`` as one new batch, or return the batch with that content.

        ``parts`` is consumed only when the content is new; a part whose schema differs from
        the first part's is cast to it, or raises ``DataError``. No rows: ``EmptyInputError``.
        On any error (also one raised while iterating ``parts``) nothing becomes visible.
        """
        _check_source(source)
        existing = self.catalog.find_batch_by_digest(source, content_digest)
        if existing is not None:
            return WrittenBatch(existing, created=False)
        fs, root, _ = self._filesystem()
        batch_id = new_id()
        source_dir = f"{root}/{source}"
        self._sweep_dir(source_dir, temporary_only=True)
        temporary, final = f"{source_dir}/{_TMP_PREFIX}{batch_id}", f"{source_dir}/{batch_id}"
        fs.makedirs(temporary, exist_ok=True)
        try:
            written = self._write_parts(parts, temporary)
            if quarantine is not None and quarantine.num_rows:
                pq.write_table(quarantine, f"{temporary}/{QUARANTINE_FILE}", filesystem=self._arrow)
            fs.mv(temporary, final, recursive=True)
        except BaseException:
            _remove(fs, temporary)
            raise
        batch = self._manifest(
            source,
            batch_id,
            written,
            content_digest=content_digest,
            quarantine=quarantine,
            origin=origin,
            run_id=run_id,
        )
        try:
            stored = self.catalog.add_batch(batch)
        except BaseException:
            _remove(fs, final)
            raise
        if stored.batch_id != batch_id:
            # Another writer recorded the same content first: ours is an orphan.
            _remove(fs, final)
            return WrittenBatch(stored, created=False)
        logger.info(
            "raw batch %s written: %s rows of %s", batch_id, written.rows, source,
            extra={"batch_id": batch_id, "source": source},
        )  # fmt: skip
        return WrittenBatch(stored, created=True)

    def get(self, batch_id: str) -> RawBatch:
        """The batch's manifest; ``NotFoundError`` if there is none."""
        return self.catalog.get_batch(batch_id)

    def read(self, batch_id: str, *, columns: builtins.list[str] | None = None) -> pa.Table:
        """The batch's rows (all parts, in order), optionally only ``columns``."""
        batch = self.catalog.get_batch(batch_id)
        names = [field["name"] for field in batch.schema]
        unknown = [name for name in columns or [] if name not in names]
        if unknown:
            raise NotFoundError(
                f"raw batch {batch_id} has no column {unknown[0]!r}; its columns are {names}"
            )
        paths = [f"{self._batch_dir(batch)}/{name}" for name in _file_names(batch.files)]
        import pyarrow.dataset as ds  # imports pandas: only when a batch is read

        try:
            dataset = ds.dataset(paths, format="parquet", filesystem=self._arrow)
            return dataset.to_table(columns=columns)
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"the files of raw batch {batch_id} are missing under {self.root}; was the raw "
                "store's root moved or cleaned? point `root` at where the batch was written"
            ) from exc

    def read_quarantine(self, batch_id: str) -> pa.Table | None:
        """The rows rejected when the batch was written (``row, column, reason, text``)."""
        batch = self.catalog.get_batch(batch_id)
        if batch.quarantine is None:
            return None
        return pq.read_table(f"{self._batch_dir(batch)}/{QUARANTINE_FILE}", filesystem=self._arrow)

    def sweep(self, *, older_than: float | None = None) -> builtins.list[str]:
        """Remove what crashed writes left behind, if older than ``older_than`` seconds
        (default ``stale_after``): temporary directories and batch directories that no
        catalog entry names. Returns their URLs."""
        fs, root, _ = self._filesystem()
        removed: builtins.list[str] = []
        try:
            sources = [e["name"] for e in fs.ls(root, detail=True) if e["type"] == "directory"]
        except FileNotFoundError:
            return removed
        for source_dir in sources:
            removed.extend(self._sweep_dir(source_dir, temporary_only=False, older_than=older_than))
        return removed

    def list(self, *, source: str | None = None, limit: int = 100) -> builtins.list[RawBatch]:
        """Batches newest first (from the catalog)."""
        return self.catalog.list_batches(source=source, limit=limit)

    @property
    def _arrow(self) -> Any:
        return self._filesystem()[2]

    def _filesystem(self) -> tuple[Any, str, Any]:
        if self._fs is None:
            self._fs = open_filesystem(self.root)
        return self._fs

    def _batch_dir(self, batch: RawBatch) -> str:
        return f"{self._filesystem()[1]}/{batch.source}/{batch.batch_id}"

    def _write_parts(self, parts: Iterable[pa.Table], directory: str) -> _Parts:
        workers = self.max_workers or min(8, os.cpu_count() or 1)
        pending: deque[Future[None]] = deque()
        names: builtins.list[str] = []
        schema: pa.Schema | None = None
        rows = 0
        with ThreadPoolExecutor(workers, thread_name_prefix="gristmill-raw") as pool:
            for given in parts:
                if schema is None:
                    schema = given.schema
                part = _conform(given, schema, len(names))
                if part.num_rows == 0:
                    continue
                name = f"part-{len(names):05d}.parquet"
                pending.append(
                    pool.submit(pq.write_table, part, f"{directory}/{name}", filesystem=self._arrow)
                )
                names.append(name)
                rows += part.num_rows
                while len(pending) > 2 * workers:
                    pending.popleft().result()
            for future in pending:
                future.result()
        if schema is None or rows == 0:
            raise EmptyInputError("no rows to write: a raw batch needs at least one row")
        return _Parts(schema, names, rows)

    def _manifest(
        self,
        source: str,
        batch_id: str,
        written: _Parts,
        *,
        content_digest: str,
        quarantine: pa.Table | None,
        origin: str,
        run_id: str | None,
    ) -> RawBatch:
        fs, root, _ = self._filesystem()
        directory = f"{root}/{source}/{batch_id}"
        fields = schema_fields(written.schema)
        bad_rows = 0 if quarantine is None else quarantine.num_rows
        return RawBatch(
            batch_id=batch_id,
            source=source,
            location=fs.unstrip_protocol(directory),
            files=[fs.unstrip_protocol(f"{directory}/{name}") for name in written.names],
            schema=fields,
            schema_fingerprint=schema_fingerprint(fields),
            row_count=written.rows,
            content_digest=content_digest,
            created_at=datetime.now(UTC),
            quarantine=fs.unstrip_protocol(f"{directory}/{QUARANTINE_FILE}") if bad_rows else None,
            bad_rows=bad_rows,
            origin=origin,
            run_id=run_id,
        )

    def _sweep_dir(
        self, source_dir: str, *, temporary_only: bool, older_than: float | None = None
    ) -> builtins.list[str]:
        fs = self._filesystem()[0]
        limit = self.stale_after if older_than is None else older_than
        try:
            entries = fs.ls(source_dir, detail=True)
        except FileNotFoundError:
            return []
        removed = []
        for entry in entries:
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            age = modified_age(entry)
            if entry["type"] != "directory" or age is None or age < limit:
                continue
            if name.startswith(_TMP_PREFIX) or (not temporary_only and self._orphan(name)):
                _remove(fs, entry["name"])
                removed.append(fs.unstrip_protocol(entry["name"]))
        return removed

    def _orphan(self, batch_id: str) -> bool:
        try:
            self.catalog.get_batch(batch_id)
        except NotFoundError:
            return True
        return False


def _conform(part: pa.Table, schema: pa.Schema, index: int) -> pa.Table:
    if part.schema.equals(schema):
        return part
    try:
        return part.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise DataError(
            f"part {index} of the batch has columns {part.schema.names} with types "
            f"{[str(t) for t in part.schema.types]}, which do not match the first part's "
            f"({schema.names}, {[str(t) for t in schema.types]}); give every part one schema"
        ) from exc


def _check_source(source: str) -> None:
    if not source or source.startswith(".") or "/" in source or "\\" in source:
        raise ConfigError(
            f"{source!r} cannot name a raw data source: use a non-empty name without '/', "
            "'\\' or a leading '.'"
        )


def _file_names(files: Iterable[str]) -> builtins.list[str]:
    return [url.rstrip("/").rsplit("/", 1)[-1] for url in files]


def _remove(fs: Any, path: str) -> None:
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass
    except OSError:
        logger.warning("could not remove %s; `sweep` will retry", path, exc_info=True)
