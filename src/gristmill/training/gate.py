"""The evaluation gate (may the best candidate replace the champion?) and ``promote``.

The model in production is ``<model>@champion`` in the registry, where ``<model>`` is
``deploy.model`` or else the spec's ``name``. With no champion, the best candidate passes.
Otherwise both are measured by the spec's metric, on the same rows when that is possible:
the champion is scored again through its *own* bundle (its fitted feature pipeline and its
learner, ``load_scorer``) on the very raw rows of this split's test subset, found by row key
in the raw batches (``training.raw_rows``), with the labels of those rows — so a champion
made by another feature pipeline is judged on the same rows, through the features it was
trained on. When that is not possible (another task or label, a forecaster, which forecasts
from the end of its own training series, raw rows no longer stored or lacking the key, a
model that cannot be loaded), its recorded value stands in and the decision says so plainly
(``comparison: recorded`` and the reason). The candidate passes when it is better than the
champion, in the metric's direction, by at least ``deploy.min_improvement`` (absolute, in
the metric's units) and at least ``deploy.min_relative_improvement`` (a fraction of the
champion's value). The best candidate that *is* the champion does not pass: there is
nothing to deploy.

``promote`` registers a candidate as a version of a model and points an alias at it (for
``champion``, the version it replaces becomes ``previous``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from gristmill.config.features import FeatureSetSpec
from gristmill.config.spec import PipelineSpec
from gristmill.errors import ConfigError, DataError, GristmillError
from gristmill.evaluation import higher_is_better
from gristmill.features.rows import without_row_id
from gristmill.features.stores import FeatureStores, trusted_packages
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.models import CHAMPION, PREVIOUS, Candidate, ModelVersion
from gristmill.training.bundle import Scorer, load_scorer
from gristmill.training.deployment import deploy
from gristmill.training.jobs import predictions_scored
from gristmill.training.raw_rows import raw_rows
from gristmill.training.train import TrainingResult

logger = logging.getLogger(__name__)

TOLERANCE = 1e-12
"""Float noise allowed when a gain is held against a margin (0.3 - 0.2 meets 0.1)."""


@dataclass(frozen=True)
class Margins:
    """How much better than the champion a candidate must be (both apply)."""

    absolute: float = 0.0
    relative: float = 0.0


@dataclass(frozen=True)
class Comparison:
    """A candidate's value against the champion's. ``gain`` is positive when the candidate
    is better, whatever the metric's direction; ``relative_gain`` is ``gain / |champion|``
    (``None`` when the champion's value is 0). ``shortfall`` says why it did not pass."""

    gain: float
    relative_gain: float | None
    passed: bool
    shortfall: str = ""


@dataclass(frozen=True)
class Measured:
    """The champion's value of the metric and how it was obtained."""

    value: float | None
    comparison: Literal["rescored", "recorded"]
    note: str = ""


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` did: the version (``registered``: made now, not found), the alias
    moved, and the version the alias pointed at before (``None``: it was not set)."""

    version: ModelVersion
    alias: str
    registered: bool
    replaced: ModelVersion | None


def model_name(spec: PipelineSpec) -> str:
    """The registry name of the spec's model: ``deploy.model``, else the spec's ``name``."""
    return (spec.deploy.model if spec.deploy else None) or spec.name


def compare(candidate: float, champion: float, *, higher: bool, margins: Margins) -> Comparison:
    """Hold ``candidate`` against ``champion`` (``higher``: larger values are better)."""
    gain = candidate - champion if higher else champion - candidate
    relative = gain / abs(champion) if champion != 0 else None
    if gain <= TOLERANCE:
        return Comparison(gain, relative, False, "it is not better than the champion")
    problems = []
    if gain < margins.absolute - TOLERANCE:
        problems.append(f"its gain {gain:.4g} is below min_improvement {margins.absolute:g}")
    # A gain over a champion at exactly 0 is infinitely large relative to it: it passes.
    if relative is not None and relative < margins.relative - TOLERANCE:
        problems.append(
            f"its relative gain {relative:.2%} is below min_relative_improvement "
            f"{margins.relative:.2%}"
        )
    return Comparison(gain, relative, not problems, "; ".join(problems))


def decide(
    model: str,
    metric: str,
    best: Candidate | None,
    champion: ModelVersion | None,
    measured: Measured | None,
    margins: Margins,
) -> dict[str, Any]:
    """The gate's decision, as recorded in the leaderboard report's ``gate``."""
    decision: dict[str, Any] = {
        "model": model,
        "metric": metric,
        "min_improvement": margins.absolute,
        "min_relative_improvement": margins.relative,
        "production": None,
        "improvement": None,
        "relative_improvement": None,
    }
    if best is None:
        return {**decision, "passed": False, "reason": "no candidate trained; nothing can deploy"}
    value = _number(best.metrics.get(metric))
    decision |= {"candidate": best.name, "candidate_id": best.candidate_id, "value": value}
    if champion is None:
        reason = f"no model {model!r} in production yet (no {model}@{CHAMPION}); "
        return {**decision, "passed": True, "reason": reason + f"{best.name} may deploy"}
    where = f"{model} version {champion.version} ({CHAMPION})"
    decision["production"] = {
        "version": champion.version,
        "alias": CHAMPION,
        "candidate_id": champion.candidate_id,
        "value": measured.value if measured else None,
        "comparison": measured.comparison if measured else None,
        "note": measured.note if measured else "",
    }
    if champion.candidate_id == best.candidate_id:
        reason = f"{best.name} is {where} already; nothing new to deploy"
        return {**decision, "passed": False, "reason": reason}
    if value is None:
        reason = f"{best.name} has no {metric} value; it cannot be compared with {where}"
        return {**decision, "passed": False, "reason": reason}
    if measured is None or measured.value is None:
        why = f" ({measured.note})" if measured and measured.note else ""
        reason = (
            f"{where} has no {metric} value to compare with{why}; promote by hand if "
            f"{best.name} should replace it: gristmill promote {best.candidate_id}"
        )
        return {**decision, "passed": False, "reason": reason}
    higher = higher_is_better(metric)
    outcome = compare(value, measured.value, higher=higher, margins=margins)
    decision |= {
        "passed": outcome.passed,
        "higher_is_better": higher,
        "improvement": outcome.gain,
        "relative_improvement": outcome.relative_gain,
        "reason": _reason(best.name, where, metric, value, measured, outcome),
    }
    return decision


def _reason(
    name: str, where: str, metric: str, value: float, measured: Measured, outcome: Comparison
) -> str:
    relative = "" if outcome.relative_gain is None else f", {outcome.relative_gain:+.2%}"
    numbers = f"{value:.4g} vs {measured.value:.4g} ({outcome.gain:+.4g}{relative})"
    if measured.comparison == "rescored":
        basis = (
            "both scored on the same test rows of this split, the champion through its own "
            "fitted pipeline and model"
        )
    else:
        basis = (
            f"the champion's value is the recorded one, from its own test subset, not "
            f"re-scored: {measured.note}"
        )
    if outcome.passed:
        return f"{name} beats {where} on {metric}: {numbers}; {basis}"
    return f"{name} does not replace {where} on {metric}: {numbers}; {outcome.shortfall}; {basis}"


def gate(
    spec: PipelineSpec,
    result: TrainingResult,
    stores: FeatureStores,
    metric: str,
    best: Candidate | None,
) -> dict[str, Any]:
    """Whether ``best`` may deploy (see the module docstring); the decision is a dict."""
    deploy = spec.deploy
    margins = Margins(
        deploy.min_improvement if deploy else 0.0,
        deploy.min_relative_improvement if deploy else 0.0,
    )
    model = model_name(spec)
    champion = stores.metadata.registry.find_alias(model, CHAMPION)
    measured = None
    if champion is not None and best is not None and champion.candidate_id != best.candidate_id:
        section = (spec.features or {}).get(result.feature_set.name)
        measured = measure_champion(champion, result, stores, metric, section)
    decision = decide(model, metric, best, champion, measured, margins)
    sizes = result.split.manifest.sizes
    test_rows = int(sizes.get("test", result.split.test.num_rows))
    return enough_rows(decision, test_rows, deploy.min_test_rows if deploy else MIN_TEST_ROWS)


MIN_TEST_ROWS = 30
"""``deploy.min_test_rows`` by default: fewer test rows pass no candidate automatically."""


def enough_rows(decision: dict[str, Any], test_rows: int, minimum: int) -> dict[str, Any]:
    """``decision`` with the test subset's size; a pass on fewer than ``minimum`` test rows
    is turned into a refusal saying why and how to lower the bar or promote by hand."""
    decision = {**decision, "test_rows": test_rows, "min_test_rows": minimum}
    if not decision.get("passed") or test_rows >= minimum:
        return decision
    who = decision.get("candidate", "the best candidate")
    reason = (
        f"{who} is not promoted automatically: the test subset has {test_rows} rows, fewer "
        f"than deploy.min_test_rows ({minimum}), so its {decision.get('metric')} is too noisy "
        f"to decide on; split more rows into test, lower deploy.min_test_rows (e.g. "
        f"min_test_rows: {max(1, test_rows)}) to let the gate decide, or promote it by hand: "
        f"gristmill promote {decision.get('candidate_id', 'MC_ID')}"
    )
    return {**decision, "passed": False, "reason": reason, "gate_reason": decision["reason"]}


def measure_champion(
    champion: ModelVersion,
    result: TrainingResult,
    stores: FeatureStores,
    metric: str,
    spec: FeatureSetSpec | None = None,
) -> Measured:
    """The champion's ``metric`` on this split's test rows, else as recorded.

    The champion is scored through its *own* bundle (``load_scorer``: its fitted feature
    pipeline, then its learner) on the same raw test rows, found by key in the raw batches
    of this feature set (``spec`` is its section); the labels come from those rows. When
    that cannot be done, its recorded value stands in and the note says why.
    """
    recorded = _number(champion.metrics.get(metric))
    candidate = stores.metadata.candidates.find_candidate(champion.candidate_id)
    if candidate is None:
        return Measured(recorded, "recorded", "its candidate record is gone")
    obstacle = _obstacle(candidate, result, stores)
    if obstacle:
        return Measured(recorded, "recorded", obstacle)
    try:
        scorer = load_scorer(stores, candidate, also_trust=trusted_packages(spec))
    except GristmillError as exc:
        return Measured(recorded, "recorded", f"its model cannot be loaded: {exc}")
    try:
        rows = raw_rows(result.feature_set, result.split.manifest, "test", spec, stores)
    except GristmillError as exc:
        return Measured(recorded, "recorded", f"the raw test rows cannot be found: {exc}")
    try:
        value = _score(scorer, rows, result, metric)
    except (GristmillError, ValueError, TypeError) as exc:  # a broken champion must not stop us
        logger.warning("could not re-score %s: %s", champion.ref, exc)
        return Measured(recorded, "recorded", f"re-scoring it on the raw test rows failed: {exc}")
    return Measured(value, "rescored")


def _obstacle(candidate: Candidate, result: TrainingResult, stores: FeatureStores) -> str:
    """Why the champion cannot be scored on these test rows ('' when it can)."""
    if candidate.task != result.task:
        return f"it is a {candidate.task} model, this is a {result.task} task"
    if result.task == "forecasting":
        return "a forecaster forecasts from the end of its own training series"
    trained_on = stores.metadata.feature_sets.find_feature_set(candidate.feature_set_id)
    if trained_on is None:
        return f"its feature set {candidate.feature_set_id} is not recorded"
    if trained_on.label != result.feature_set.label:
        return f"it predicts {trained_on.label!r}, not {result.feature_set.label!r}"
    return ""


def _score(scorer: Scorer, rows: pa.Table, result: TrainingResult, metric: str) -> float | None:
    """``metric`` of the champion's predictions for raw ``rows`` (a row its own filters
    reject is not scored), against the labels of those rows."""
    if rows.num_rows == 0:
        raise DataError("this split's test subset has no rows")
    frame = without_row_id(rows).to_pandas()
    features = scorer.features(frame)
    label = result.feature_set.label
    truth = frame[label].loc[features.index] if label else None
    outcome = predictions_scored(scorer.learner, result.task, [metric], features, truth)
    return _number(outcome.metrics.get(metric))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def register_candidate(
    metadata: MetadataStore, candidate_id: str, model: str, *, actor: str = "gristmill"
) -> tuple[ModelVersion, bool]:
    """The version of ``model`` made from a trained candidate, registered now if it has none
    yet (``True`` then). ``ConfigError`` for a candidate that failed in training."""
    candidate = metadata.candidates.get_candidate(candidate_id)
    if candidate.status != "trained" or candidate.artifact is None:
        raise ConfigError(
            f"candidate {candidate_id} ({candidate.name}) failed in training and has no model "
            "to promote; pick a trained one from `gristmill ls candidates`"
        )
    registry = metadata.registry
    known = registry.list_versions(model, candidate_id=candidate_id, limit=1)
    if known:
        return known[0], False
    return registry.register_version(model, candidate, actor=actor), True


def promote(
    metadata: MetadataStore,
    candidate_id: str,
    model: str,
    *,
    alias: str = CHAMPION,
    actor: str = "gristmill",
) -> Promotion:
    """Make a trained candidate ``model@alias``: register it as a version (or find the version
    it has already) and move the alias; the champion it replaces becomes ``previous``. When
    ``model`` has a stored traffic policy, promoting to ``champion`` deploys the version as
    its primary (``training.deployment.deploy``), so the policy and the aliases agree."""
    version, registered = register_candidate(metadata, candidate_id, model, actor=actor)
    registry = metadata.registry
    if alias == CHAMPION and registry.get_policy(model) is not None:
        # The champion is the primary of a stored policy: move both at once.
        change = deploy(
            registry, model, version.version, reason=f"promote {candidate_id}", actor=actor
        )
        before = change.before.primary if change.before else None
        old = None if before is None else registry.get_version(model, before)
        return Promotion(version, alias, registered, old)
    replaced = registry.set_alias(
        model,
        alias,
        version.version,
        previous=PREVIOUS if alias == CHAMPION else None,
        actor=actor,
    )
    return Promotion(version, alias, registered, replaced)
