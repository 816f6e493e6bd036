"""What a score job reads: a feature set, a raw batch, a source's newest batch, or a file.

``resolve_input`` turns the text a person or an event gives into a ``ScoreInput`` and
``read_input`` into the rows to score: *raw* columns (a raw batch or a file, scored through
the version's own fitted pipeline, compiled into its servable) or *features* (a feature set
made by that very pipeline: the learner alone scores them). A feature set made by another
pipeline is never scored as it is: its raw batch is scored through the version's pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa

from gristmill.errors import ConfigError, DataError, NotFoundError
from gristmill.features.rows import ROW_ID
from gristmill.features.stores import FeatureStores
from gristmill.servables.port import ServableManifest
from gristmill.stores.lineage import FILE_KIND, file_node
from gristmill.stores.scores import INPUT_FORMS

InputKind = Literal["feature_set", "batch", "file"]
FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json"}
FILE_FORMATS |= {".ndjson": "json"}


@dataclass(frozen=True)
class ScoreInput:
    """An input resolved: its kind, and the id (or path) that names it."""

    kind: InputKind
    ident: str


@dataclass(frozen=True)
class InputRows:
    """The rows of an input, ready to score: ``mode`` says whether ``table`` holds raw
    columns or the features of the version's pipeline; ``keys`` name each row (beside
    its number); ``parents`` are the lineage nodes the scores come from."""

    table: pa.Table
    mode: Literal["raw", "features"]
    keys: list[str]
    parents: list[tuple[str, str]]


def resolve_input(stores: FeatureStores, text: str) -> ScoreInput:
    """The input ``text`` names (see ``INPUT_FORMS``); ``ConfigError`` saying which forms
    exist."""
    kind, _, rest = text.partition(":")
    metadata = stores.metadata
    if kind == "batch" and rest:
        return ScoreInput("batch", metadata.batches.get_batch(rest).batch_id)
    if kind == "source" and rest:
        batch = metadata.batches.latest_batch(rest)
        if batch is None:
            raise NotFoundError(
                f"source {rest!r} has no raw batch yet; ingest it: gristmill ingest {rest} "
                "--spec SPEC"
            )
        return ScoreInput("batch", batch.batch_id)
    if kind == "feature_set" and rest:
        found = metadata.feature_sets.find_feature_set(rest)
        found = found or metadata.feature_sets.latest_feature_set(rest)
        if found is None:
            raise NotFoundError(
                f"no feature set with id or name {rest!r}; list them with "
                "`gristmill ls feature-sets`"
            )
        return ScoreInput("feature_set", found.feature_set_id)
    suffix = Path(text).suffix.lower()
    if suffix in FILE_FORMATS:
        if "://" not in text and not Path(text).is_file():
            raise ConfigError(f"no file {text}; give the path of an existing file")
        return ScoreInput("file", text)
    if _batch(stores, text):
        return ScoreInput("batch", text)
    if metadata.feature_sets.find_feature_set(text) is not None:
        return ScoreInput("feature_set", text)
    if suffix:
        raise ConfigError(
            f"cannot score {text}: files are read as {', '.join(sorted(FILE_FORMATS))}; "
            "convert it or rename it"
        )
    raise ConfigError(f"{text!r} names no input; give {INPUT_FORMS}")


def _batch(stores: FeatureStores, batch_id: str) -> bool:
    try:
        stores.metadata.batches.get_batch(batch_id)
    except NotFoundError:
        return False
    return True


def read_input(stores: FeatureStores, source: ScoreInput, manifest: ServableManifest) -> InputRows:
    """The rows of ``source`` for the servable of ``manifest``; ``DataError`` naming the
    input and the columns it lacks."""
    if source.kind == "file":
        table = read_file(source.ident)
        parents = [(file_node(source.ident), FILE_KIND)]  # the node ingestion gives it too
        rows = InputRows(table, "raw", _keys(table, manifest), parents)
    elif source.kind == "batch":
        table = stores.raw.read(source.ident)
        rows = InputRows(table, "raw", _keys(table, manifest), [(source.ident, "raw_batch")])
    else:
        rows = _feature_set_rows(stores, source.ident, manifest)
    needed = manifest.features if rows.mode == "features" else manifest.inputs
    missing = [c.name for c in needed if c.name not in rows.table.column_names]
    if missing:
        what = source.ident if source.kind == "file" else f"{source.kind} {source.ident}"
        raise DataError(
            f"{what} lacks column(s) {', '.join(missing)} that {manifest.ref} reads; add "
            f"them (see `gristmill compile {manifest.ref}`)",
            file=source.ident if source.kind == "file" else None,
            column=missing[0],
        )
    return rows


def _feature_set_rows(
    stores: FeatureStores, feature_set_id: str, manifest: ServableManifest
) -> InputRows:
    feature_set = stores.metadata.feature_sets.get_feature_set(feature_set_id)
    keys = [k for k in (ROW_ID, feature_set.entity, feature_set.timestamp) if k]
    parents = [(feature_set_id, "feature_set")]
    if manifest.pipeline is not None and feature_set.pipeline_artifact == manifest.pipeline:
        table = stores.offline.read(feature_set_id)
        return InputRows(table, "features", [k for k in keys if k in table.column_names], parents)
    # Another pipeline's features: the version computes its own from the same raw rows.
    batches = [b for b in feature_set.inputs if _batch(stores, b)]
    if len(batches) != 1:
        raise ConfigError(
            f"feature set {feature_set_id} was made by another pipeline than {manifest.ref}'s "
            f"from {len(feature_set.inputs)} inputs; score its raw batch instead (batch:ID)"
        )
    table = stores.raw.read(batches[0])
    parents.append((batches[0], "raw_batch"))
    return InputRows(table, "raw", _keys(table, manifest), parents)


def _keys(table: pa.Table, manifest: ServableManifest) -> list[str]:
    """The key columns a raw row carries into its score: its row id, its entity."""
    names = [ROW_ID, manifest.entity]
    return [n for n in names if n and n in table.column_names]


def read_file(path: str) -> pa.Table:
    """A CSV, Parquet or JSON Lines file (a path or fsspec URL) as one table."""
    import fsspec
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet

    kind = FILE_FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise ConfigError(f"cannot tell the format of {path}: name it .csv, .parquet or .jsonl")

    def csv(handle: object) -> pa.Table:  # an empty field is a missing value, as in pandas
        options = pyarrow.csv.ConvertOptions(strings_can_be_null=True)
        return pyarrow.csv.read_csv(handle, convert_options=options)

    def parquet(handle: object) -> pa.Table:  # one file: read_table's datasets import pandas
        return pyarrow.parquet.ParquetFile(handle).read()

    readers = {"csv": csv, "parquet": parquet, "json": pyarrow.json.read_json}
    try:
        with fsspec.open(path, "rb") as handle:
            table: pa.Table = readers[kind](handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"no file {path}; give the path of an existing file") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot read {path} as {kind}: {exc}", file=path) from exc
    return table
