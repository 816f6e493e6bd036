"""Compiling a registered version into its servable, once, and storing it by digest.

ONNX is tried first: the fitted feature pipeline and the learner as one graph. It is kept
only if it answers the held-out rows as the native scorer does (``parity``). Otherwise —
a step or learner without an ONNX form, or a graph that disagrees — the version is served
natively, and the manifest's ``reason`` says why. A native servable is checked too: its
numpy-columns path against the scorer on the same rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from importlib import metadata as packages
from typing import TYPE_CHECKING, Any

import pandas as pd

from gristmill.config.features import FeatureSetSpec
from gristmill.errors import ConfigError, GristmillError
from gristmill.features.stores import FeatureStores, trusted_packages
from gristmill.servables import storage
from gristmill.servables.native import NativeServable
from gristmill.servables.onnx_servable import OnnxServable
from gristmill.servables.parity import (
    DOUBLE_TOLERANCE,
    FLOAT32_TOLERANCE,
    compare,
    describe,
    held_out_rows,
)
from gristmill.servables.port import (
    OutputKind,
    Parity,
    Predictions,
    Servable,
    ServableManifest,
)
from gristmill.servables.schema import blanked, columns, features_nullable, nullable, raw_types
from gristmill.servables.unconvertible import NotConvertible
from gristmill.stores.models import Candidate, ModelVersion
from gristmill.stores.specs import restored_spec
from gristmill.training.bundle import Scorer, load_scorer

if TYPE_CHECKING:
    from gristmill.servables.onnx_graphs import OnnxGraphs

logger = logging.getLogger(__name__)

LIBRARIES = ("gristmill", "scikit-learn", "numpy", "onnx", "onnxruntime", "skl2onnx")
NATIVE_COST = "served by its fitted objects on one pandas DataFrame built per request"


@dataclass(frozen=True)
class Compiled:
    """A servable just compiled and stored (``manifest.digest`` set) and the loaded object."""

    manifest: ServableManifest
    servable: Servable


def compile_version(stores: FeatureStores, version: ModelVersion, *, threads: int = 1) -> Compiled:
    """Compile ``version`` (see the module docstring), store it and record it."""
    if not version.artifact:
        raise ConfigError(f"{version.ref} has no model bundle to compile")
    candidate = stores.metadata.candidates.get_candidate(version.candidate_id)
    section = feature_section(stores, candidate)
    scorer = load_scorer(stores, candidate, also_trust=trusted_packages(section))
    history = scorer.pipeline is not None and scorer.pipeline.label_history
    rows, rows_from = held_out_rows(stores, candidate, section, keep_label=history)
    base = _base(stores, version, candidate, scorer, rows)
    graphs: OnnxGraphs | None = None
    why = ""
    try:
        graphs = _graphs(scorer)
    except NotConvertible as exc:
        why = str(exc)
    read = set(graphs.inputs) if graphs else _read_columns(scorer, base)
    gaps = blanked(rows, [c.name for c in base.inputs if c.nullable and c.name in read])
    if len(gaps):
        rows = pd.concat([rows, gaps], ignore_index=True)
    checked = Checked(rows, rows_from, len(gaps))
    reference = native_predictions(scorer, checked.rows, base.output == "probabilities")
    if graphs is not None:
        decode = getattr(scorer.learner, "encoded_classes", None) is not None
        kept = _try_onnx(stores, version, base, graphs, checked, reference, threads, decode)
        if isinstance(kept, Compiled):
            return kept
        why = kept
    return _native(stores, version, base, scorer, checked, reference, why, read)


@dataclass(frozen=True)
class Checked:
    """The rows a servable is checked on: held-out rows, then ``blanked`` copies of the
    first with one column missing each (missing values must be answered alike too)."""

    rows: pd.DataFrame
    rows_from: str
    blanked: int


def _read_columns(scorer: Scorer, base: ServableManifest) -> set[str]:
    """The raw columns the kept features are computed from (those the ONNX form would ask
    for), or every input when a step cannot say what it reads."""
    try:
        from gristmill.servables.onnx_graphs import read_columns

        return set(read_columns(scorer))
    except (ImportError, NotConvertible):
        return {c.name for c in base.inputs}


def _graphs(scorer: Scorer) -> OnnxGraphs:
    try:
        from gristmill.servables.onnx_graphs import onnx_graphs
    except ImportError as exc:
        raise NotConvertible(
            f"{exc.name} is not installed (pip install 'gristmill[serve]')"
        ) from exc
    return onnx_graphs(scorer, raw_types(scorer))


def feature_section(stores: FeatureStores, candidate: Candidate) -> FeatureSetSpec | None:
    """The ``features.<name>`` section of the spec whose run trained ``candidate``, if kept."""
    metadata = stores.metadata
    run = metadata.runs.find_run(candidate.run_id) if candidate.run_id else None
    stored = metadata.specs.find_spec(run.spec_digest) if run and run.spec_digest else None
    feature_set = metadata.feature_sets.find_feature_set(candidate.feature_set_id)
    if stored is None or feature_set is None:
        return None
    try:
        spec = restored_spec(stored)
    except GristmillError:
        return None
    return (spec.features or {}).get(feature_set.name)


def native_predictions(scorer: Scorer, rows: pd.DataFrame, proba: bool) -> Predictions:
    """What the scorer answers for raw ``rows`` (the reference of the parity check)."""
    features = scorer.features(rows)
    values = scorer.learner.predict(features).to_numpy()
    probabilities = scorer.learner.predict_proba(features).to_numpy(dtype=float) if proba else None
    return Predictions(values, probabilities)


def _base(
    stores: FeatureStores,
    version: ModelVersion,
    candidate: Candidate,
    scorer: Scorer,
    rows: pd.DataFrame,
) -> ServableManifest:
    """The manifest fields every kind shares; ``kind``, ``reason`` and ``parity`` to come."""
    learner, pipeline = scorer.learner, scorer.pipeline
    types = raw_types(scorer)
    feature_set = stores.metadata.feature_sets.get_feature_set(candidate.feature_set_id)
    entity = pipeline.entity if pipeline else None
    feature_types = dict.fromkeys(scorer.feature_names, "float64")
    feature_nulls = features_nullable(scorer, scorer.features(rows))
    classes = tuple(learner.classes) if learner.task == "classification" else None
    return ServableManifest(
        model=version.model,
        version=version.version,
        kind="native",
        reason="",
        digest="",
        bundle=version.artifact or "",
        pipeline=scorer.manifest.get("feature_pipeline"),
        task=learner.task,
        output=_output(learner.task, "proba" in learner.capabilities),
        inputs=columns(types, nullable(scorer, rows, types)),
        entity=entity,
        classes=classes,
        libraries=_libraries(),
        features=columns(feature_types, feature_nulls, online=entity is not None),  # type: ignore[arg-type]
        view=feature_set.name if entity else None,
    )


def _try_onnx(
    stores: FeatureStores,
    version: ModelVersion,
    base: ServableManifest,
    graphs: OnnxGraphs,
    checked: Checked,
    reference: Predictions,
    threads: int,
    decode: bool,
) -> Compiled | str:
    """The ONNX servable if it passes parity, else why not."""
    kept = set(graphs.inputs)
    inputs = tuple(c for c in base.inputs if c.name in kept)
    kind = "float32" if graphs.float32 else "float64"
    steps = ", ".join(graphs.steps) or "none"
    reason = (
        f"the fitted feature pipeline (steps: {steps}) and the {graphs.learner_kind} as one "
        f"ONNX graph ({kind} learner input), run by ONNX Runtime"
    )
    manifest = replace(base, kind="onnx", reason=reason, inputs=inputs)
    full, learner_only = graphs.full.SerializeToString(), graphs.learner.SerializeToString()
    try:
        servable = OnnxServable(
            manifest, full, learner_only, decode_classes=decode, threads=threads
        )
    except GristmillError as exc:
        return f"ONNX Runtime cannot run the graph: {exc}"
    except Exception as exc:  # ONNX Runtime refuses a graph with its own error types
        return f"ONNX Runtime cannot run the graph: {str(exc).splitlines()[0][:300]}"
    tolerance = FLOAT32_TOLERANCE if graphs.float32 else DOUBLE_TOLERANCE
    try:
        answered = servable.predict(_columns(checked.rows, inputs))
    except GristmillError as exc:
        return f"the ONNX graph failed on the held-out rows: {exc}"
    parity = _compared(reference, answered, base.task, tolerance, checked)
    if not parity.passed:
        return f"its ONNX graph did not match the native scorer ({describe(parity)})"
    manifest = replace(manifest, parity=parity)
    body = storage.to_body(
        manifest,
        graph=storage.put_graph(stores, full),
        learner_graph=storage.put_graph(stores, learner_only),
        decode_classes=decode,
    )
    digest = storage.put_servable(stores, version, body)
    manifest = replace(manifest, digest=digest)
    return Compiled(manifest, _with_manifest(servable, manifest))


def _native(
    stores: FeatureStores,
    version: ModelVersion,
    base: ServableManifest,
    scorer: Scorer,
    checked: Checked,
    reference: Predictions,
    why: str,
    read: set[str],
) -> Compiled:
    """The native servable, asking for the ``read`` columns alone when it answers the
    checked rows as its scorer does with them (else for every input)."""
    manifest = replace(base, kind="native", reason=f"{why}; {NATIVE_COST}")
    narrowed = replace(manifest, inputs=tuple(c for c in base.inputs if c.name in read))
    parity = None
    if narrowed.inputs != manifest.inputs:
        try:
            parity = _native_parity(narrowed, scorer, checked, reference)
        except GristmillError as exc:
            logger.info("%s: its pipeline reads more than its features need (%s)", version.ref, exc)
    if parity is not None and parity.passed:
        manifest = narrowed
    else:
        parity = _native_parity(manifest, scorer, checked, reference)
    if not parity.passed:
        logger.warning("%s: the native servable differs from its scorer: %s", version.ref, parity)
    manifest = replace(manifest, parity=parity)
    digest = storage.put_servable(stores, version, storage.to_body(manifest))
    manifest = replace(manifest, digest=digest)
    return Compiled(manifest, NativeServable(manifest, scorer))


def _native_parity(
    manifest: ServableManifest, scorer: Scorer, checked: Checked, reference: Predictions
) -> Parity:
    answered = NativeServable(manifest, scorer).predict(_columns(checked.rows, manifest.inputs))
    return _compared(reference, answered, manifest.task, DOUBLE_TOLERANCE, checked)


def _compared(
    reference: Predictions, answered: Predictions, task: str, tolerance: float, checked: Checked
) -> Parity:
    parity = compare(
        reference, answered, task=task, tolerance=tolerance, rows_from=checked.rows_from
    )
    return replace(parity, blanked=checked.blanked)


def _columns(rows: pd.DataFrame, inputs: Any) -> dict[str, Any]:
    return {c.name: rows[c.name].to_numpy() for c in inputs if c.name in rows.columns}


def _with_manifest(servable: OnnxServable, manifest: ServableManifest) -> OnnxServable:
    servable._manifest = manifest
    return servable


def _output(task: str, proba: bool) -> OutputKind:
    kinds: dict[str, OutputKind] = {
        "classification": "probabilities" if proba else "class",
        "regression": "number",
        "clustering": "cluster",
        "forecasting": "forecast",
    }
    return kinds[task]


def _libraries() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = packages.version(name)
        except packages.PackageNotFoundError:
            continue
    return found


def manifest_json(manifest: ServableManifest) -> str:
    """The manifest as indented JSON (for ``gristmill compile --json``)."""
    return json.dumps({**storage.to_body(manifest), "digest": manifest.digest}, indent=2)
