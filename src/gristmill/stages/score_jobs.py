"""``run_score_job``: score an input with a registered version, partition by partition.

The input's rows are cut into partitions of ``partition_rows`` (the same cut every time:
partition *i* is rows ``[i·n, (i+1)·n)``). Each partition not yet in the score store is
scored on the executor (``score_partition``, a module-level function: the ``local`` and
``dask`` executors run it in other processes, carrying the servable and the store) and
written there once, under a temporary name renamed into place. The job's progress is kept
in the metadata store after each partition; once every partition is in place the manifest
is written — only then do readers see the scores — and the lineage recorded.

So a job killed mid-way and asked again (a worker redelivered its event) scores only the
partitions it had not committed, and no row is written twice. A row the version cannot
score (a value it cannot read, say) is a *bad row*: counted, named by row number and key,
and left out; the rest of its partition is scored (the partition is halved until the bad
rows are found).
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.errors import DataError
from gristmill.execution.port import Executor, Task
from gristmill.features.stores import FeatureStores
from gristmill.servables.loading import load_servable, parse_ref, resolve_version
from gristmill.servables.port import Predictions, Servable
from gristmill.stages.score_inputs import read_input, resolve_input
from gristmill.stages.score_rows import LAYOUT, bad_row, numeric_block, scores_table
from gristmill.stores.metadata import LineageEdge
from gristmill.stores.scores import SCORE_JOB_KIND, ScoreJob, ScoreStore

NAMED_BAD_ROWS = 20
"""Bad rows named in a job's errors (all are counted)."""

Progress = Callable[[ScoreJob], None]
Sink = Callable[[int, pa.Table], None]
"""Takes each partition's scores as it is scored: its index and its table (see
``run_score_job``)."""


@dataclass(frozen=True)
class PartitionWork:
    """One partition to score: everything ``score_partition`` needs, picklable."""

    job_id: str
    model: str
    version: int
    index: int
    first_row: int
    input_id: str
    table: pa.Table
    mode: str
    keys: tuple[str, ...]
    servable: Servable
    store: ScoreStore
    partition_rows: int = 0  # the job's cut (rows per partition), kept with each partition
    layout: int = LAYOUT  # the score store layout of the job (ADR 25), kept likewise
    keep_scores: bool = False  # send the partition's scores back (``run_score_job``'s sink)


@dataclass(frozen=True)
class PartitionResult:
    index: int
    rows: int
    bad_rows: int
    bad: list[dict[str, Any]]
    written: bool
    table: pa.Table | None = None  # the scores, when the work asked to keep them


def score_partition(work: PartitionWork) -> PartitionResult:
    """Score one partition and write it to the score store (once: see the module)."""
    manifest = work.servable.manifest
    block = numeric_block(
        work.table, manifest.features if work.mode == "features" else manifest.inputs
    )
    if block is not None:
        columns: Mapping[str, np.ndarray] = block
    else:
        columns = {
            name: work.table.column(name).to_numpy(zero_copy_only=False)
            for name in work.table.column_names
        }
        if work.mode != "features":
            _read_numbers(columns, work.servable)
    bad: list[tuple[int, str]] = []
    answered = _scored(work, columns, 0, work.table.num_rows, bad)
    rows = np.concatenate([p for p, _ in answered]) if answered else np.empty(0, np.int64)
    table = scores_table(work, rows, [a for _, a in answered])
    named = [bad_row(work, position, error) for position, error in bad]
    stats = {
        "rows": table.num_rows,
        "bad_rows": len(bad),
        "bad": named[:NAMED_BAD_ROWS],
        "partition_rows": work.partition_rows,
        "layout": work.layout,
    }
    written = work.store.write_partition(work.job_id, work.index, table, stats)
    kept = table if work.keep_scores else None
    return PartitionResult(work.index, table.num_rows, len(bad), stats["bad"], written, kept)


def _read_numbers(columns: dict[str, np.ndarray], servable: Servable) -> None:
    """A file is text: a number column of a CSV that Arrow read as text (because some of its
    values are not numbers) is read as numbers where each value is one; a value that is not
    stays text, so the servable refuses its row (alone, named) and scores the rest. pandas
    is imported only for such a column: a file of numbers read as numbers scores without it."""
    for column in servable.manifest.inputs:
        values = columns.get(column.name)
        if values is None or column.type not in ("float64", "int64"):
            continue
        if values.dtype.kind not in "OUS":
            continue
        import pandas as pd

        numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
        not_read = np.isnan(numbers) & ~pd.isna(values)
        if not_read.any():
            mixed = numbers.astype(object)
            mixed[not_read] = values[not_read]
            columns[column.name] = mixed
        else:
            columns[column.name] = numbers


def _scored(
    work: PartitionWork, columns: Mapping[str, np.ndarray], lo: int, hi: int, bad: list[Any]
) -> list[tuple[np.ndarray, Predictions]]:
    """Predictions of rows ``lo:hi``; halved on a ``DataError`` until the bad rows are
    alone (each added to ``bad`` with its error)."""
    if lo >= hi:
        return []
    whole = lo == 0 and hi == work.table.num_rows  # as read: a block stays one block
    part = columns if whole else {name: values[lo:hi] for name, values in columns.items()}
    try:
        if work.mode == "features":
            answer = work.servable.predict_features(part)
        else:
            answer = work.servable.predict(part)
    except DataError as exc:
        if hi - lo == 1:  # the message counts rows of this one-row piece: say the job's row
            bad.append((lo, re.sub(r"\brow 0\b", f"row {work.first_row + lo}", str(exc))))
            return []
        middle = (lo + hi) // 2
        return _scored(work, columns, lo, middle, bad) + _scored(work, columns, middle, hi, bad)
    return [(np.arange(lo, hi), answer)]


def run_score_job(
    job: ScoreJob,
    stores: FeatureStores,
    scores: ScoreStore,
    executor: Executor,
    *,
    partition_rows: int,
    progress: Progress | None = None,
    sink: Sink | None = None,
) -> ScoreJob:
    """Run (or finish) ``job``: see the module docstring. Returns the job as recorded at the
    end; a job that fails is recorded ``failed`` with its error, and the error raised.

    ``sink`` is given the scores of each partition scored by this call, in partition order,
    as they are committed (the table written, or the same rows when another writer's was
    in place first) — so a copy can be written without reading the store back. Partitions
    committed before this call are not given: a sink that sees a gap reads them from the
    store once the job is committed."""
    jobs = stores.metadata.score_jobs
    now = datetime.now(UTC)
    job = replace(job, state="running", started_at=job.started_at or now, error=None)
    try:
        return _run(
            job, stores, scores, executor, partition_rows, progress or (lambda _: None), sink
        )
    except Exception as exc:
        failed = replace(
            jobs.find_job(job.job_id) or job,
            state="failed",
            finished_at=datetime.now(UTC),
            error=str(exc),
        )
        jobs.save_job(failed)
        if progress is not None:
            progress(failed)
        raise


def _run(
    job: ScoreJob,
    stores: FeatureStores,
    scores: ScoreStore,
    executor: Executor,
    partition_rows: int,
    progress: Progress,
    sink: Sink | None,
) -> ScoreJob:
    jobs = stores.metadata.score_jobs
    name, which = parse_ref(job.model)
    # A job asked again keeps what it started with: the version it pinned (not what the
    # alias names now), the cut of its partitions (not today's setting) and their layout,
    # so no partition is scored by two versions, cut two ways or written in two schemas.
    before = jobs.find_job(job.job_id)
    if before is not None and before.version is not None:
        which = before.version
    version = resolve_version(stores, name, which)
    # partitions scored here, one after the other, may use every core (ONNX Runtime's
    # threads); those of an executor's processes run side by side, one thread each
    threads = 1 if executor.capabilities.separate_processes else 0
    servable = load_servable(stores, name, version.version, threads=threads)
    source = resolve_input(stores, job.input)
    rows = read_input(stores, source, servable.manifest)
    # only what the partitions need travels to the executor's processes
    needed_columns = (
        servable.manifest.features if rows.mode == "features" else servable.manifest.inputs
    )
    kept = list(dict.fromkeys([c.name for c in needed_columns] + rows.keys))
    table = rows.table.select(kept)
    committed = scores.committed(job.job_id)
    partition_rows = _kept(committed, "partition_rows", partition_rows)
    layout = _kept(committed, "layout", LAYOUT)
    total = math.ceil(table.num_rows / partition_rows)
    done = {i: s for i, s in committed.items() if i < total}
    job = replace(
        job,
        version=version.version,
        input_kind=source.kind,
        partitions_total=total,
        partitions_done=len(done),
        rows=sum(int(s.get("rows", 0)) for s in done.values()),
        bad_rows=sum(int(s.get("bad_rows", 0)) for s in done.values()),
        errors=[b for s in done.values() for b in s.get("bad", [])][:NAMED_BAD_ROWS],
        location=scores.location(job.job_id),
    )
    jobs.save_job(job)
    progress(job)
    # made as they are submitted: a partition copied for other processes while the
    # earlier ones are scored
    needed = (
        PartitionWork(
            job.job_id,
            name,
            version.version,
            index,
            index * partition_rows,
            source.ident,
            _partition(table, index, partition_rows, executor),
            rows.mode,
            tuple(rows.keys),
            servable,
            scores,
            partition_rows,
            layout,
            sink is not None,
        )
        for index in range(total)
        if index not in done
    )
    for result in _in_flight(executor, needed):
        if sink is not None and result.table is not None:
            sink(result.index, result.table)
        job = replace(
            job,
            partitions_done=job.partitions_done + 1,
            rows=job.rows + result.rows,
            bad_rows=job.bad_rows + result.bad_rows,
            errors=(job.errors + result.bad)[:NAMED_BAD_ROWS],
        )
        jobs.save_job(job)
        progress(job)
    return _commit(job, stores, scores, version.ref, rows.parents, layout)


def _kept(committed: dict[int, dict[str, Any]], name: str, otherwise: int) -> int:
    """What the partitions ``committed`` were written with (each records it in its stats:
    ``partition_rows``, the cut; ``layout``, absent before ADR 25, i.e. 1), else
    ``otherwise``. Partitions of one job that disagree are a ``DataError``."""
    found = {int(s[name]) for s in committed.values() if name in s}
    if name == "layout" and any(name not in s for s in committed.values()):
        found.add(1)
    if len(found) > 1:
        raise DataError(
            f"the job's partitions were written with different {name} ({sorted(found)}); "
            "score the input as a new job"
        )
    return found.pop() if found else otherwise


def _partition(table: pa.Table, index: int, size: int, executor: Executor) -> pa.Table:
    """Rows ``[index·size, (index+1)·size)``; for an executor of other processes, in buffers
    of their own: a pickled slice carries its parent's whole buffers (pyarrow), so every
    partition sent would carry the entire input (155 MB per task for 1M rows x 20 floats)."""
    part = table.slice(index * size, size)
    if not executor.capabilities.separate_processes:
        return part
    columns = [pa.concat_arrays(c.chunks) if c.num_chunks else c for c in part.columns]
    return pa.table(columns, schema=part.schema)


def _in_flight(executor: Executor, needed: Iterable[PartitionWork]) -> Iterator[PartitionResult]:
    """The partitions' results in order, at most two per executor worker submitted ahead
    (bounded memory; an ``inline`` executor scores one, then reports it)."""
    window = max(1, executor.capabilities.workers * 2)
    waiting: deque[Task[PartitionResult]] = deque()
    for work in needed:
        if len(waiting) >= window:
            yield waiting.popleft().result()
        waiting.append(executor.submit(score_partition, work))
    while waiting:
        yield waiting.popleft().result()


def _commit(
    job: ScoreJob,
    stores: FeatureStores,
    scores: ScoreStore,
    version_ref: str,
    parents: list[tuple[str, str]],
    layout: int,
) -> ScoreJob:
    """Write the manifest (the job becomes visible), the lineage, and the job's end."""
    manifest = {
        "job_id": job.job_id,
        "model": job.model,
        "version": job.version,
        "input": job.input,
        "input_kind": job.input_kind,
        "partitions": list(range(job.partitions_total)),
        "rows": job.rows,
        "bad_rows": job.bad_rows,
        "layout": layout,
        "committed_at": datetime.now(UTC).isoformat(),
    }
    scores.commit(job.job_id, manifest)
    edges = [LineageEdge(version_ref, "model_version", job.job_id, SCORE_JOB_KIND, "scored")]
    edges += [LineageEdge(p, kind, job.job_id, SCORE_JOB_KIND, "scored") for p, kind in parents]
    stores.metadata.lineage.add_edges(edges)
    job = replace(job, state="succeeded", finished_at=datetime.now(UTC))
    stores.metadata.score_jobs.save_job(job)
    return job


def ready_payload(job: ScoreJob) -> dict[str, Any]:
    """The ``scores.ready`` payload: which job, model and version, where, rows, bad rows."""
    return {
        "job_id": job.job_id,
        "model": job.model,
        "version": job.version,
        "input": job.input,
        "where": job.location,
        "rows": job.rows,
        "bad_rows": job.bad_rows,
        "errors": job.errors[:5],
    }
