"""``SqliteMetadataReader``: the metadata store's read side on its SQLite file, through the
standard library's ``sqlite3`` (ADR 28).

The file is the one ``backends.sql.SqlMetadataStore`` writes; this reads its tables as they
stand at the newest migration and writes nothing (the connection is read-only). It exists
so that ``ls``, ``show`` and ``lineage`` answer without importing SQLAlchemy, which alone
takes longer to import than those verbs have to answer. Whatever it cannot read as it is —
a file not there yet, tables at another revision — it refuses at ``open`` with
``BackendError``, and the caller reads through the store itself instead, which creates or
migrates as any command does.

Values come back as the SQL adapter returns them: the columns it declares ``JSON`` are
decoded, those it declares ``DATETIME`` (naive UTC text) are read as aware UTC datetimes;
rows are ordered by the same keys. ``gristmill.testing.metadata_reader_contract`` holds the
two equal.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from gristmill.backends.sql.schema_version import VERSION_TABLE, head_revision
from gristmill.errors import BackendError
from gristmill.stores.features import FeatureSet, missing_feature_set
from gristmill.stores.metadata import AuditEntry, LineageEdge, Run, StageExecution, missing_run
from gristmill.stores.models import Candidate, Split, missing_candidate, missing_split
from gristmill.stores.raw import RawBatch, missing_batch
from gristmill.stores.reports import Report, missing_report
from gristmill.stores.specs import StoredSpec, missing_spec

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

BUSY_TIMEOUT_S = 30.0
_IDS_PER_QUERY = 500  # bound parameters per statement, well under SQLite's limit


def _utc(text: str) -> datetime:
    """A stored time as the SQL adapter returns it: aware, in UTC (naive text is UTC)."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_DECODERS = {"JSON": json.loads, "DATETIME": _utc}


def sqlite_path(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (relative, or absolute as ``sqlite:////``);
    ``None`` for any other URL, or one with options or escapes this does not read."""
    scheme, _, rest = url.partition(":///")
    if scheme not in ("sqlite", "sqlite+pysqlite") or not rest or any(c in rest for c in "?%#"):
        return None
    return Path(rest)


class _Tables:
    """The read-only connection, and rows of a table as domain objects."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connection: sqlite3.Connection | None = None
        self._decoders: dict[str, dict[str, Any]] = {}

    def open(self) -> None:
        if self.connection is not None:
            return
        if not self.path.is_file():
            raise BackendError(f"no metadata store at {self.path} to read")
        try:
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # each statement reads one committed state (WAL)
            )
        except sqlite3.Error as exc:
            raise BackendError(f"cannot read the metadata store at {self.path}: {exc}") from exc
        self.connection = connection
        try:
            current = self.at_head()
        except BackendError:
            self.close()
            raise
        if not current:
            self.close()
            raise BackendError(
                f"the metadata store at {self.path} is not at this gristmill's newest "
                "revision; open it with the store (which migrates it) to read it"
            )

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def at_head(self) -> bool:
        head = head_revision()
        found = self.select("sqlite_master", "WHERE type = 'table' AND name = ?", (VERSION_TABLE,))
        if head is None or not found:
            return False
        versions = self.select(VERSION_TABLE, "", ())
        return [row["version_num"] for row in versions] == [head]

    def select(self, table: str, clauses: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """``SELECT * FROM table clauses`` (``clauses`` is constant text; every value is a
        bound parameter), each row a dict with its JSON and datetime columns decoded."""
        if self.connection is None:
            raise BackendError(f"the metadata reader of {self.path} is not open; call open()")
        try:
            cursor = self.connection.execute(f"SELECT * FROM {table} {clauses}", params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            decoders = self._decoders_of(table)
        except sqlite3.Error as exc:
            raise BackendError(f"the metadata store at {self.path} failed: {exc}") from exc
        return [
            {
                name: value if value is None or name not in decoders else decoders[name](value)
                for name, value in zip(names, row, strict=True)
            }
            for row in rows
        ]

    def objects(self, cls: type[T], table: str, clauses: str, *params: Any) -> list[T]:
        return [cls(**row) for row in self.select(table, clauses, params)]

    def first(self, cls: type[T], table: str, clauses: str, *params: Any) -> T | None:
        found = self.objects(cls, table, f"{clauses} LIMIT 1", *params)
        return found[0] if found else None

    def _decoders_of(self, table: str) -> dict[str, Any]:
        """The decoder of each column ``table`` declares ``JSON`` or ``DATETIME``."""
        if table not in self._decoders and self.connection is not None:
            info = self.connection.execute(f"PRAGMA table_info({table})").fetchall()
            self._decoders[table] = {
                column[1]: _DECODERS[column[2].upper()]
                for column in info
                if column[2].upper() in _DECODERS
            }
        return self._decoders.get(table, {})


def _where(**conditions: Any) -> tuple[str, list[Any]]:
    """``WHERE a = ? AND b = ?`` of the conditions that are not ``None``, and their values."""
    given = {k: v for k, v in conditions.items() if v is not None}
    text = " AND ".join(f'"{column}" = ?' for column in given)
    return (f"WHERE {text}" if text else ""), list(given.values())


class _RunReader:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get_run(self, run_id: str) -> Run:
        run = self.find_run(run_id)
        if run is None:
            raise missing_run(run_id)
        return run

    def find_run(self, run_id: str) -> Run | None:
        return self._tables.first(Run, "runs", "WHERE run_id = ?", run_id)

    def list_runs(self, *, limit: int = 50) -> list[Run]:
        order = "ORDER BY started_at DESC, run_id DESC LIMIT ?"
        return self._tables.objects(Run, "runs", order, limit)


class _ExecutionReader:
    _ORDER = "ORDER BY started_at, execution_id"

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def list_executions(self, run_id: str) -> list[StageExecution]:
        clauses = f"WHERE run_id = ? {self._ORDER}"
        return self._tables.objects(StageExecution, "stage_executions", clauses, run_id)

    def list_executions_of_runs(self, run_ids: Sequence[str]) -> dict[str, list[StageExecution]]:
        found: dict[str, list[StageExecution]] = {run_id: [] for run_id in run_ids}
        wanted = list(found)
        for start in range(0, len(wanted), _IDS_PER_QUERY):
            some = wanted[start : start + _IDS_PER_QUERY]
            clauses = f"WHERE run_id IN ({', '.join('?' * len(some))}) {self._ORDER}"
            for execution in self._tables.objects(
                StageExecution, "stage_executions", clauses, *some
            ):
                found[str(execution.run_id)].append(execution)
        return found


class _LineageReader:
    _ORDER = "ORDER BY created_at, parent_id, child_id, relation"

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def parents(self, node_id: str) -> list[LineageEdge]:
        clauses = f"WHERE child_id = ? {self._ORDER}"
        return self._tables.objects(LineageEdge, "lineage_edges", clauses, node_id)

    def children(self, node_id: str) -> list[LineageEdge]:
        clauses = f"WHERE parent_id = ? {self._ORDER}"
        return self._tables.objects(LineageEdge, "lineage_edges", clauses, node_id)


class _AuditReader:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def list_entries(
        self, *, subject: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        where, values = _where(subject=subject, action=action)
        clauses = f"{where} ORDER BY at DESC, entry_id DESC LIMIT ?"
        return self._tables.objects(AuditEntry, "audit_log", clauses, *values, limit)


class _BatchReader:
    _ORDER = "ORDER BY created_at DESC, batch_id DESC"

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get_batch(self, batch_id: str) -> RawBatch:
        clauses = f"WHERE batch_id = ? {self._ORDER}"
        batch = self._tables.first(RawBatch, "raw_batches", clauses, batch_id)
        if batch is None:
            raise missing_batch(batch_id)
        return batch

    def list_batches(self, *, source: str | None = None, limit: int = 100) -> list[RawBatch]:
        where, values = _where(source=source)
        clauses = f"{where} {self._ORDER} LIMIT ?"
        return self._tables.objects(RawBatch, "raw_batches", clauses, *values, limit)


class _ReportReader:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get_report(self, report_id: str) -> Report:
        report = self._tables.first(Report, "reports", "WHERE report_id = ?", report_id)
        if report is None:
            raise missing_report(report_id)
        return report

    def list_reports(
        self, *, subject: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Report]:
        where, values = _where(subject=subject, kind=kind)
        clauses = f"{where} ORDER BY created_at DESC, report_id DESC LIMIT ?"
        return self._tables.objects(Report, "reports", clauses, *values, limit)


class _FeatureSetReader:
    _ORDER = "ORDER BY created_at DESC, feature_set_id DESC"

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get_feature_set(self, feature_set_id: str) -> FeatureSet:
        feature_set = self.find_feature_set(feature_set_id)
        if feature_set is None:
            raise missing_feature_set(feature_set_id)
        return feature_set

    def find_feature_set(self, feature_set_id: str) -> FeatureSet | None:
        clauses = f"WHERE feature_set_id = ? {self._ORDER}"
        return self._tables.first(FeatureSet, "feature_sets", clauses, feature_set_id)

    def list_feature_sets(self, *, name: str | None = None, limit: int = 100) -> list[FeatureSet]:
        where, values = _where(name=name)
        clauses = f"{where} {self._ORDER} LIMIT ?"
        return self._tables.objects(FeatureSet, "feature_sets", clauses, *values, limit)


class _SplitReader:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get_split(self, split_id: str) -> Split:
        split = self.find_split(split_id)
        if split is None:
            raise missing_split(split_id)
        return split

    def find_split(self, split_id: str) -> Split | None:
        return self._tables.first(Split, "splits", "WHERE split_id = ?", split_id)


class _CandidateReader:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get_candidate(self, candidate_id: str) -> Candidate:
        candidate = self.find_candidate(candidate_id)
        if candidate is None:
            raise missing_candidate(candidate_id)
        return candidate

    def find_candidate(self, candidate_id: str) -> Candidate | None:
        clauses = "WHERE candidate_id = ?"
        return self._tables.first(Candidate, "candidates", clauses, candidate_id)

    def list_candidates(
        self,
        *,
        run_id: str | None = None,
        feature_set_id: str | None = None,
        limit: int = 100,
    ) -> list[Candidate]:
        where, values = _where(run_id=run_id, feature_set_id=feature_set_id)
        clauses = f"{where} ORDER BY started_at DESC, candidate_id DESC LIMIT ?"
        return self._tables.objects(Candidate, "candidates", clauses, *values, limit)


class _SpecReader:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get_spec(self, digest: str) -> StoredSpec:
        spec = self.find_spec(digest)
        if spec is None:
            raise missing_spec(digest)
        return spec

    def find_spec(self, digest: str) -> StoredSpec | None:
        return self._tables.first(StoredSpec, "pipeline_specs", "WHERE digest = ?", digest)


class SqliteMetadataReader:
    """The read side of the metadata store in the SQLite file at ``path`` (a
    ``MetadataReader``). The constructor only stores its argument; ``open`` connects
    read-only and checks the tables' revision, ``close`` disconnects; both are idempotent,
    and the reader is a context manager doing the two."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._tables = _Tables(self.path)
        self.runs = _RunReader(self._tables)
        self.executions = _ExecutionReader(self._tables)
        self.lineage = _LineageReader(self._tables)
        self.audit = _AuditReader(self._tables)
        self.batches = _BatchReader(self._tables)
        self.reports = _ReportReader(self._tables)
        self.feature_sets = _FeatureSetReader(self._tables)
        self.splits = _SplitReader(self._tables)
        self.candidates = _CandidateReader(self._tables)
        self.specs = _SpecReader(self._tables)

    def __repr__(self) -> str:
        return f"SqliteMetadataReader({str(self.path)!r})"

    def open(self) -> None:
        """Connect read-only; ``BackendError`` if there is no such file, it is no SQLite
        database, or its tables are not at the newest revision (the store migrates them)."""
        self._tables.open()

    def close(self) -> None:
        self._tables.close()

    def __enter__(self) -> SqliteMetadataReader:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
