"""``prepare``: validate input batches, compute a feature set, store it offline and online.

Each row gets its key (``features.rows``) as it is read; the pipeline is fitted on the rows
it may learn from (``features.fitting``), then computes every row.

The CLI, notebooks and ``PreparationStage`` call it. It is idempotent: a feature set whose
id (definition + input batches) is known is returned as recorded, and validation reports are
keyed by batch and thresholds, so a redelivered event writes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from gristmill.config.features import FeatureSetSpec
from gristmill.core.ids import digest_json
from gristmill.core.tasks import TaskChoice
from gristmill.errors import ConfigError, ConflictError, DataError, EmptyInputError, NotFoundError
from gristmill.features.fitting import FitSplit, fit_features
from gristmill.features.identity import definition_digest, feature_set_id
from gristmill.features.join import join_described
from gristmill.features.labels import label_rows
from gristmill.features.materialize import Materialized, materialize_counted
from gristmill.features.online_freshness import ttl_warning
from gristmill.features.online_views import OnlineView, views_in_use
from gristmill.features.pipeline import FittedFeaturePipeline
from gristmill.features.rows import ROW_ID, keyed_input, without_row_id
from gristmill.features.selection import LABEL_METHODS
from gristmill.features.serialization import dumps, loads
from gristmill.features.stores import FeatureStores, trusted_packages
from gristmill.features.validation import REPORT_KIND, validate
from gristmill.stores.features import FeatureSet
from gristmill.stores.metadata import LineageEdge, MetadataStore
from gristmill.stores.raw import RawBatch
from gristmill.stores.reports import Report

logger = logging.getLogger(__name__)

FEATURE_SET_KIND = "feature_set"
PIPELINE_KIND = "feature_pipeline"


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` did. ``stopped`` when validation said stop (no feature set then)."""

    name: str
    reports: list[Report]
    feature_set: FeatureSet | None = None
    created: bool = False
    materialized: int = 0
    stopped: bool = False
    anomalies: list[dict[str, object]] = field(default_factory=list)
    online_warning: str | None = None
    """Set when the TTL leaves (nearly) no vector fresh: the figure, and what to change."""


def previous_batch(metadata: MetadataStore, batch: RawBatch) -> RawBatch | None:
    """The batch of the same source that arrived just before ``batch`` (ids sort by time)."""
    earlier = [
        b
        for b in metadata.batches.list_batches(source=batch.source, limit=1000)
        if b.batch_id < batch.batch_id
    ]
    return max(earlier, key=lambda b: b.batch_id, default=None)


def validate_batch(
    spec: FeatureSetSpec, batch: RawBatch, stores: FeatureStores, *, run_id: str | None = None
) -> Report:
    """Validate one raw batch against ``spec.validation`` and store (or find) its report."""
    thresholds = spec.validation
    report_id = (
        "rep_"
        + digest_json(
            {"batch": batch.batch_id, "validation": thresholds.model_dump(mode="json")}
        ).removeprefix("sha256:")[:24]
    )
    table = stores.raw.read(batch.batch_id)
    before = previous_batch(stores.metadata, batch)
    reference = thresholds.drift.reference
    result = validate(
        table,
        thresholds,
        previous=stores.raw.read(before.batch_id) if before is not None else None,
        reference=stores.raw.read(reference) if reference else None,
        subject=batch.batch_id,
    )
    report = Report(
        report_id=report_id,
        kind=REPORT_KIND,
        subject=batch.batch_id,
        status=result.status,
        created_at=datetime.now(UTC),
        body=result.to_body(),
        run_id=run_id,
    )
    try:
        stores.metadata.reports.add_report(report)
    except ConflictError:  # recorded earlier with other numbers: the first one stands
        report = stores.metadata.reports.get_report(report_id)
    stores.metadata.lineage.add_edges(
        [LineageEdge(batch.batch_id, "raw_batch", report_id, "validation_report", "validated_by")]
    )
    return report


def combine(spec: FeatureSetSpec, tables: Mapping[str, pa.Table], name: str = "<set>") -> pa.Table:
    """The one input table: the single input, or the point-in-time join of several."""
    return combine_described(spec, tables, name)[0]


def combine_described(
    spec: FeatureSetSpec, tables: Mapping[str, pa.Table], name: str = "<set>"
) -> tuple[pa.Table, list[dict[str, str]]]:
    """``combine``'s table, and its schema: each column's type and the input it came
    from (``features.join.join_described``). Errors name ``features.<name>.join``."""
    if len(tables) == 1:
        only = next(iter(tables.values()))
        return only, []
    if spec.join is None:
        raise ConfigError(f"features.{name}: a feature set from several sources needs 'join'")
    where = f"features.{name}.join"
    plans = [spec.join.plan(source, where) for source in list(tables)[1:]]
    return join_described(tables, plans=plans, where=where)


def prepare(
    name: str,
    spec: FeatureSetSpec,
    inputs: Mapping[str, RawBatch],
    stores: FeatureStores,
    *,
    run_id: str | None = None,
    split: FitSplit | None = None,
    task: TaskChoice | None = None,
) -> Prepared:
    """Validate ``inputs`` (source → batch), then compute, store and materialize the set.

    ``split`` (for the feature set training uses) decides the training rows before anything
    is fitted; the pipeline learns from those rows only (``features.fitting``), and the
    split is part of the feature set's id. Without it, the pipeline is fitted on all rows.
    ``task`` is the task the spec sets for training on this set (``training.task.
    preset_task``): label-based selection scores for it, and it is part of the id; without
    it, selection reads the task off the label by training's rule (``core.tasks``).

    Raises ``ConfigError`` for a bad step configuration (the step named) or a selection
    that does not fit the task (naming ``train.task``), ``DataError`` for
    data the steps cannot handle (step and column named), ``EmptyInputError`` for no rows.
    """
    missing = [source for source in spec.from_ if source not in inputs]
    if missing:
        raise ConfigError(f"feature set {name!r} needs a batch of {', '.join(missing)}")
    reports = [validate_batch(spec, inputs[s], stores, run_id=run_id) for s in spec.from_]
    if any(report.status == "failed" for report in reports):
        findings = [a for r in reports for a in r.body.get("anomalies", [])]
        return Prepared(name, reports, stopped=True, anomalies=findings)
    batch_ids = [inputs[s].batch_id for s in spec.from_]
    by_label = spec.select is not None and spec.select.method in LABEL_METHODS
    set_id = feature_set_id(
        name,
        spec,
        batch_ids,
        split=split.identity if split else None,
        task=task.task if task is not None and by_label else None,
    )
    arrival = max(batch.created_at for batch in inputs.values())
    known = stores.metadata.feature_sets.find_feature_set(set_id)
    if known is not None:
        # Known offline; make sure it is online too (a new namespace, a flushed store):
        # only vectors newer than what the store holds are written.
        counted = None
        if spec.online is not None and spec.online.enabled and stores.online is not None:
            features = without_row_id(stores.offline.read(known.feature_set_id))
            counted = _materialize(spec, known, features, stores, arrival=arrival)
        return Prepared(
            name,
            reports,
            feature_set=known,
            created=False,
            materialized=counted.written if counted else 0,
            online_warning=ttl_warning(spec, counted, arrival),
        )
    tables = {s: stores.raw.read(inputs[s].batch_id) for s in spec.from_}
    table, joined = combine_described(spec, tables, name)
    if table.num_rows == 0:
        raise EmptyInputError(f"feature set {name!r}: its inputs hold no rows")
    table, keys = keyed_input(spec, table, batch_ids[0])
    table = label_rows(spec, table, where=f"features.{name}")
    fitted, features, fitted_on = fit_features(
        name, spec, table, keys, feature_set_id=set_id, split=split, task=task
    )
    artifact = stores.artifacts.put(dumps(fitted), kind=PIPELINE_KIND)
    made_at = datetime.now(UTC)
    stored = stores.offline.write(
        FeatureSet(
            feature_set_id=set_id,
            name=name,
            definition_digest=definition_digest(spec),
            inputs=batch_ids,
            location="",
            columns=[],
            row_count=features.num_rows,
            created_at=made_at,
            entity=spec.entity,
            timestamp=spec.timestamp,
            label=spec.label_column,
            pipeline_artifact=artifact.digest,
            selection={
                **fitted.selection.to_dict(),
                "learned": fitted.describe(),
                "fitted_on": fitted_on,
                **({"joined": joined} if joined else {}),
            },
            validation_report=reports[0].report_id,
            run_id=run_id,
        ),
        features,
    )
    stores.metadata.lineage.add_edges(
        [LineageEdge(b, "raw_batch", set_id, FEATURE_SET_KIND, "computed_from") for b in batch_ids]
        + [LineageEdge(set_id, FEATURE_SET_KIND, artifact.digest, PIPELINE_KIND, "fitted")]
    )
    if stored.created_at != made_at:  # another worker recorded the very same set first
        return Prepared(name, reports, feature_set=stored, created=False)
    counted = _materialize(spec, stored, without_row_id(features), stores, arrival=arrival)
    materialized = counted.written if counted else 0
    materialized += _refresh_views_in_use(
        spec, stored, without_row_id(table), stores, arrival=arrival
    )
    return Prepared(
        name,
        reports,
        feature_set=stored,
        created=True,
        materialized=materialized,
        online_warning=ttl_warning(spec, counted, arrival),
    )


def load_pipeline(
    stores: FeatureStores, feature_set: FeatureSet, spec: FeatureSetSpec | None = None
) -> FittedFeaturePipeline:
    """The fitted pipeline that computed ``feature_set``, verified against its digest.

    Custom steps named by ``spec`` are trusted on load; no other foreign type is."""
    digest = feature_set.pipeline_artifact or ""
    ref = stores.artifacts.find(digest)
    if ref is None:
        raise NotFoundError(
            f"the fitted pipeline {digest or '(none)'} of feature set "
            f"{feature_set.feature_set_id} is not in the artifact store; prepare it again"
        )
    return loads(stores.artifacts.get(ref), also_trust=trusted_packages(spec))


def push_online(name: str, spec: FeatureSetSpec, records: pa.Table, stores: FeatureStores) -> int:
    """Compute features for fresh ``records`` and put them in the online store (the stream
    layer: no refit, no new feature set), through every pipeline in use: the newest fitted
    pipeline of ``name``, and the pipeline of each model a registry alias points at.

    Returns how many vectors were newer than what the store held; 0 when the set has no
    online view or was never prepared yet.
    """
    latest = stores.metadata.feature_sets.latest_feature_set(name)
    if latest is None or spec.online is None or not spec.online.enabled or spec.entity is None:
        return 0
    features = load_pipeline(stores, latest, spec).transform_table(records)
    # a streamed record is new now: stamp it with its arrival unless it has its own time;
    # one stamp for every pipeline, so none of their vectors supersedes another's
    stamped = datetime.now(UTC)
    arrival = stamped if spec.online.ttl_from == "arrival" else None
    counted = _materialize(spec, latest, features, stores, stamped=stamped, arrival=arrival)
    count = counted.written if counted else 0
    refreshed = _refresh_views_in_use(
        spec, latest, records, stores, stamped=stamped, arrival=arrival
    )
    return count + refreshed


def _refresh_views_in_use(
    spec: FeatureSetSpec,
    newest: FeatureSet,
    raw: pa.Table,
    stores: FeatureStores,
    *,
    stamped: datetime | None = None,
    arrival: datetime | None = None,
) -> int:
    """Put ``raw``'s rows through the pipelines of the models in use (registry aliases)
    whose pipeline is not ``newest``'s, into their own parts of the view: transform only.

    A pipeline that cannot compute these rows (a column it needs is gone) is skipped with a
    warning; its part then reads ``superseded`` for the entities that moved on.
    """
    if stores.online is None or spec.online is None or not spec.online.enabled:
        return 0
    count = 0
    for view in views_in_use(stores, newest.name):
        if view.pipeline == newest.pipeline_artifact:
            continue
        try:
            ref = stores.artifacts.find(view.pipeline)
            if ref is None:
                raise NotFoundError(f"pipeline {view.pipeline} is not in the artifact store")
            fitted = loads(stores.artifacts.get(ref), also_trust=trusted_packages(spec))
            features = fitted.transform_table(raw)
        except (DataError, ConfigError, NotFoundError) as exc:
            logger.warning(
                "online view %s of %s (used by %s) not refreshed: %s",
                view.pipeline, newest.name, ", ".join(view.used_by), exc,
            )  # fmt: skip
            continue
        counted = _materialize(
            spec, newest, features, stores, view=view, stamped=stamped, arrival=arrival
        )
        count += counted.written if counted else 0
    return count


def _materialize(
    spec: FeatureSetSpec,
    stored: FeatureSet,
    features: pa.Table,
    stores: FeatureStores,
    *,
    view: OnlineView | None = None,
    stamped: datetime | None = None,
    arrival: datetime | None = None,
) -> Materialized | None:
    """Write ``features`` to the part of ``stored``'s view of the pipeline that computed
    them: ``stored``'s own, or ``view``'s (a model's). Without a timestamp column vectors
    are stamped ``stamped``, else ``stored``'s creation time; with ``online.ttl_from:
    arrival``, every vector is stamped ``arrival`` (the TTL counts from it). ``None``
    when the set has no online view."""
    online = spec.online
    if stores.online is None or online is None or not online.enabled:
        return None
    if spec.entity is None:
        raise ConfigError(
            f"feature set {stored.name!r} has `online:` but no `entity`; name the entity key "
            "column so vectors can be looked up"
        )
    if view is None:
        view = OnlineView(stored.name, stored.feature_set_id, stored.pipeline_artifact or "")
    skip = (spec.entity, spec.timestamp, spec.label_column, ROW_ID)
    names = [c for c in features.column_names if c not in skip]
    counted = materialize_counted(
        stores.online,
        stored.name,
        features,
        entity=spec.entity,
        timestamp=spec.timestamp,
        features=names,
        ttl=online.ttl,
        feature_set_id=view.feature_set_id,
        pipeline=view.pipeline,
        created_at=stamped or stored.created_at,
        stamp=arrival if online.ttl_from == "arrival" else None,
    )
    logger.info(
        "materialized %d vectors of %s (pipeline %s)", counted.written, stored.name, view.pipeline
    )
    return counted
