"""The split a feature set is fitted for: decided before fitting, recorded and restored by key.

Preparation of the feature set training uses asks ``split_for`` for a ``TrainingSplit``; it
splits the combined input rows (after the join, before any step) by the spec's ``split:``
through the segregation API, so the feature pipeline is fitted on the training subset only
(ADR 8). Once the feature rows exist, the split is recorded: its manifest, and its
membership by row key (an Arrow artifact: the key columns and each row's subset), for the
rows the feature set holds. Training and evaluation never split again: ``fitted_split``
restores the very subsets from that record, in any process, by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from gristmill.config.spec import PipelineSpec, SplitSpec, chosen_split, training_target
from gristmill.errors import ConfigError, NotFoundError
from gristmill.features.fitting import FitPlan
from gristmill.features.labels import labelled_mask
from gristmill.features.rows import ROW_ID
from gristmill.features.stores import FeatureStores
from gristmill.segregation import (
    SplitResult,
    SplitWarning,
    keyed_membership,
    membership_keys,
    positions_by_key,
    split,
    warnings_and_notes,
)
from gristmill.stores.features import FeatureSet
from gristmill.stores.metadata import LineageEdge
from gristmill.stores.models import Split

SPLIT_KIND = "split"
ARROW = "application/vnd.apache.arrow"


@dataclass(frozen=True)
class TrainingSplit:
    """Splits the keyed input rows of the feature set training uses, before fitting."""

    spec: SplitSpec
    stores: FeatureStores
    label: str | None = None
    entity: str | None = None
    timestamp: str | None = None
    run_id: str | None = None

    @property
    def identity(self) -> Mapping[str, Any]:
        return self.spec.model_dump(mode="json")

    def decide(self, feature_set_id: str, table: pa.Table, keys: list[str]) -> FitPlan:
        """The training rows of ``table``; ``record`` stores the split of the feature rows."""
        result = split(
            table,
            self.spec,
            label=self.label,
            feature_set_id=feature_set_id,
            custom=self.spec.custom,
            not_features=[self.entity, self.timestamp, ROW_ID],
        )
        raw = keyed_membership(table, result.rows, keys)

        def record(features: pa.Table, computed: Mapping[str, Any] | None = None) -> dict[str, Any]:
            # a filtered-out row is in no subset, nor a row without a label; a row a step
            # added is in the subset it was computed with (``computed``)
            found: dict[Any, Any] = (
                dict(computed) if computed is not None else positions_by_key(features, raw)
            )
            parts = self._labelled(features, found)
            membership = keyed_membership(features, parts, keys)
            ref = self.stores.artifacts.put(_ipc(membership), kind=SPLIT_KIND, media_type=ARROW)
            manifest = replace(
                result.manifest,
                sizes={name: len(rows) for name, rows in parts.items()},
                membership=ref.digest,
                run_id=self.run_id,
            )
            recorded = self.stores.metadata.splits.add_split(manifest)
            self.stores.metadata.lineage.add_edges(
                [
                    LineageEdge(
                        feature_set_id, "feature_set", recorded.split_id, "split", "split_into"
                    )
                ]
            )
            return {
                "split_id": recorded.split_id,
                "split": dict(self.identity),
                "subset": "train",
                "rows": result.train.num_rows,
            }

        return FitPlan(result.train, record, {str(k): v for k, v in result.rows.items()})

    def _labelled(self, features: pa.Table, parts: dict[Any, Any]) -> dict[Any, Any]:
        """``parts`` without the rows that have no label."""
        if self.label is None or self.label not in features.column_names:
            return parts
        known = labelled_mask(features, self.label).to_numpy(zero_copy_only=False)
        return {subset: rows[known[rows]] for subset, rows in parts.items()}


def split_for(
    spec: PipelineSpec, name: str, stores: FeatureStores, run_id: str | None = None
) -> TrainingSplit | None:
    """The split feature set ``name`` is fitted for: the spec's (or the default) when
    training uses ``name``, else ``None`` (a set no model trains on has no test rows)."""
    if training_target(spec) != name or spec.features is None or name not in spec.features:
        return None
    section = spec.features[name]
    return TrainingSplit(
        chosen_split(spec),
        stores,
        label=section.label_column,
        entity=section.entity,
        timestamp=section.timestamp,
        run_id=run_id,
    )


def fitted_split(
    spec: PipelineSpec | None, feature_set: FeatureSet, stores: FeatureStores
) -> SplitResult:
    """The split ``feature_set`` was fitted for, its subsets restored by key.

    ``ConfigError`` when the set was fitted on all its rows (its test rows would have been
    seen by the pipeline) or for another split than ``spec`` asks for."""
    fitted_on: dict[str, Any] = feature_set.selection.get("fitted_on") or {}
    what = f"feature set {feature_set.feature_set_id} ({feature_set.name})"
    if not fitted_on.get("split_id"):
        raise ConfigError(
            f"{what} was fitted on all of its rows, so a test subset of it would have been "
            "seen by its fitted pipeline; name it in train.feature_set and prepare it again "
            "(gristmill prepare SPEC), so it is fitted on its training rows only"
        )
    if spec is not None:
        wanted = chosen_split(spec).model_dump(mode="json")
        if fitted_on.get("split") != wanted:
            raise ConfigError(
                f"{what} was fitted for split {fitted_on.get('split')}, but the spec asks for "
                f"{wanted}; prepare it again (gristmill prepare SPEC) to fit one for this split"
            )
    manifest = stores.metadata.splits.get_split(str(fitted_on["split_id"]))
    return restore_split(feature_set, manifest, stores)


def restore_split(feature_set: FeatureSet, manifest: Split, stores: FeatureStores) -> SplitResult:
    """The subsets of ``manifest`` in ``feature_set``, from its stored membership (verified
    by digest), found by row key."""
    membership = read_membership(manifest, stores)
    table = stores.offline.read(feature_set.feature_set_id)
    if membership_keys(membership) == ["row"] and "row" not in table.column_names:
        # a membership recorded by position (before row keys): positions in this table
        membership = membership.rename_columns([_POSITION, "subset"])
        table = table.append_column(_POSITION, pa.array(range(table.num_rows), pa.int64()))
    parts = positions_by_key(table, membership)
    if _POSITION in table.column_names:
        table = table.drop_columns([_POSITION])
    warnings, notes = warnings_and_notes([SplitWarning(**w) for w in manifest.warnings])
    return SplitResult(
        train=table.take(parts.get("train", _EMPTY)),
        test=table.take(parts.get("test", _EMPTY)),
        manifest=manifest,
        validation=table.take(parts["validation"]) if "validation" in parts else None,
        warnings=warnings,
        label=feature_set.label,
        rows=parts,
        notes=notes,
    )


def read_membership(manifest: Split, stores: FeatureStores) -> pa.Table:
    """A split's stored membership (key columns and ``subset``), verified by digest."""
    ref = stores.artifacts.find(manifest.membership or "")
    if ref is None:
        raise NotFoundError(f"split {manifest.split_id} has no stored membership")
    return pa.ipc.open_stream(stores.artifacts.get(ref)).read_all()


_POSITION = "__row_position"
_EMPTY = pa.array([], pa.int64())


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())
