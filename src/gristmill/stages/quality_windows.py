"""What the live quality stages share: each version's set-up, and measuring windows again.

A version's **set-up** (``Setups.of``): its task (from the registry), its window length —
the ``monitor.quality_window`` of the worker's ``--spec`` when it names the version's
model, else of the spec of the run that trained it, else ``DEFAULT_QUALITY_WINDOW`` (one
hour): the same order as the drift windows' (``stages.monitoring``) — and the calibration of its
probabilities from its evaluation's reliability curve (``evaluation.cbpe.Calibration``).
Read once per version and process: a version never changes.

**Measuring** (``measure_windows``): a window whose joined outcomes changed since it was
last measured is read with its labelled rows, measured (``evaluation.live_quality``), its
estimate's own error taken on the same rows, and stored as of the revision it was read
at; if more outcomes joined it meanwhile, the store refuses and it is read again. The
windows a handler changed are measured, then any left behind (by a worker that died
between joining and measuring), so every change is measured by some later handler.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from gristmill.config.monitoring import DEFAULT_QUALITY_WINDOW
from gristmill.config.spec import PipelineSpec
from gristmill.core.quality_metrics import QUALITY_METRICS
from gristmill.errors import GristmillError, NotFoundError
from gristmill.evaluation.cbpe import Calibration, figures, tally
from gristmill.evaluation.live_quality import measure
from gristmill.stages.demotions import demoted
from gristmill.stages.specs import spec_of_run
from gristmill.stores.feedback import FeedbackStore, Labelled, QualityWindow, WindowKey
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.models import ModelVersion
from gristmill.stores.reports import LEADERBOARD_KIND
from gristmill.training.gate import model_name

logger = logging.getLogger(__name__)

MEASURE_ATTEMPTS = 3
"""Times a window is read and measured again when newer outcomes keep joining it; after
that the handler that joined them measures it."""


@dataclass(frozen=True)
class VersionSetup:
    """How a version's live quality is measured (see the module docstring)."""

    task: str
    window_seconds: int
    calibration: Calibration | None = None


class Setups:
    """Each version's set-up, read once (see the module docstring)."""

    def __init__(self, metadata: MetadataStore, spec: PipelineSpec | None = None) -> None:
        self.metadata = metadata
        self.spec = spec
        self._known: dict[tuple[str, int], VersionSetup] = {}

    def of(self, model: str, version: int) -> VersionSetup:
        found = self._known.get((model, version))
        if found is None:
            found = self._known[(model, version)] = self._read(model, version)
        return found

    def _read(self, model: str, version: int) -> VersionSetup:
        try:
            registered = self.metadata.registry.get_version(model, version)
        except NotFoundError:  # logged by a server of another registry? no task to measure
            logger.warning("%s/%s is not in the registry; not measured", model, version)
            return VersionSetup("", int(self._window(None)))
        candidate = self.metadata.candidates.find_candidate(registered.candidate_id)
        spec = self.spec if self.spec is not None and model_name(self.spec) == model else None
        spec = spec or self._spec_of(candidate.run_id if candidate else None)
        calibration = self._calibration(registered, candidate.split_id if candidate else None)
        return VersionSetup(registered.task, int(self._window(spec)), calibration)

    def _spec_of(self, run_id: str | None) -> PipelineSpec | None:
        run = self.metadata.runs.find_run(run_id) if run_id else None
        if run is None:
            return self.spec
        try:
            return spec_of_run(self.metadata, run)
        except GristmillError as exc:  # a spec that cannot be read: its window is not known
            logger.warning("the spec of run %s cannot be read (%s); using --spec", run_id, exc)
            return self.spec

    def _window(self, spec: PipelineSpec | None) -> float:
        for chosen in (spec, self.spec):
            if chosen is not None and chosen.monitor is not None:
                return chosen.monitor.quality_window
        return DEFAULT_QUALITY_WINDOW

    def _calibration(self, version: ModelVersion, split_id: str | None) -> Calibration | None:
        """The reliability curve of the version's candidate in its evaluation's leaderboard."""
        if version.task != "classification" or split_id is None:
            return None
        reports = self.metadata.reports.list_reports(subject=split_id, kind=LEADERBOARD_KIND)
        for report in reports:
            for standing in report.body.get("standings") or []:
                if standing.get("candidate_id") != version.candidate_id:
                    continue
                curves = (report.body.get("curves") or {}).get(standing.get("candidate")) or {}
                curve = curves.get("calibration")
                return Calibration.from_curves(curve) if isinstance(curve, dict) else None
        return None


def measure_windows(
    store: FeedbackStore, setups: Setups, changed: Iterable[WindowKey]
) -> list[QualityWindow]:
    """Measure ``changed`` windows, then any left unmeasured; the windows stored."""
    keys = list(dict.fromkeys([*changed, *store.unmeasured()]))
    stored = []
    for key in keys:
        setup = setups.of(key.model, key.version)
        for _ in range(MEASURE_ATTEMPTS):
            window, rows = store.labelled(key)
            if window.measured_revision >= window.revision:
                break
            done = measured(window, rows, setup)
            if store.record_quality(done):
                stored.append(done)
                break
    return stored


LOWER_IS_BETTER = frozenset({"rmse", "mae", "mape"})
QUALITY_ORDER = QUALITY_METRICS


def quality_demotions(metadata: MetadataStore, windows: Iterable[QualityWindow]) -> list[Any]:
    """Each measured window of a live version whose policy's rollback rule has
    ``max_quality_drop``, judged once it holds ``min_requests`` labelled rows: live quality
    that far below the version's offline metric (``quality_metric``, else the first of
    accuracy, F1, ROC AUC, RMSE, MAE, MAPE both have; for the error metrics "below" is
    above) demotes the version (``stages.demotions``); the announcements."""
    announced: list[Any] = []
    for window in windows:
        policy = metadata.registry.get_policy(window.model)
        rule = None if policy is None else policy.rollback_rule
        if rule is None or rule.max_quality_drop is None or window.labelled < rule.min_requests:
            continue
        offline = metadata.registry.get_version(window.model, window.version).metrics
        names = [rule.quality_metric] if rule.quality_metric else list(QUALITY_ORDER)
        metric = next(
            (n for n in names if _number(offline.get(n)) and _number(window.metrics.get(n))),
            None,
        )
        if metric is None:
            continue
        was, now = float(offline[metric]), float(window.metrics[metric])
        drop = now - was if metric in LOWER_IS_BETTER else was - now
        if drop <= rule.max_quality_drop:
            continue
        reason = (
            f"live {metric} {now:.4g} against {was:.4g} offline (a drop of {drop:.4g} > "
            f"{rule.max_quality_drop:g}) on {window.labelled} labelled predictions of the "
            f"window from {window.window_start:%Y-%m-%d %H:%M} UTC"
        )
        figures = {"metric": metric, "live": now, "offline": was, "labelled": window.labelled}
        announced += demoted(
            metadata,
            window.model,
            window.version,
            reason,
            figures,
            trigger="quality",
            judged_by=lambda rule: rule.max_quality_drop is not None,
        )
    return announced


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def measured(window: QualityWindow, rows: list[Labelled], setup: VersionSetup) -> QualityWindow:
    """``window`` with its figures measured on ``rows`` (its labelled predictions)."""
    result = measure(
        setup.task,
        window.classes,
        [r.prediction for r in rows],
        [r.probabilities for r in rows],
        [r.actual for r in rows],
    )
    error: dict[str, Any] = {}
    if result.proba is not None and result.rows:
        proba = result.proba
        if setup.calibration is not None:
            proba = setup.calibration.apply(window.classes, proba)
        estimated = figures(tally(window.classes, result.predicted, proba), window.classes)
        for name, real in result.metrics.items():
            guess = estimated.get(name)
            if guess is not None and real is not None:
                error[name] = guess - real
    return replace(
        window,
        labelled=len(rows),
        duplicates=sum(max(r.outcomes - 1, 0) for r in rows),
        late=sum(1 for r in rows if r.late),
        unusable=result.unusable,
        metrics=dict(result.metrics),
        estimate_error=error,
        measured_at=datetime.now(UTC),
    )


def estimate_sums(
    classes: list[str], predicted: list[Any], proba: np.ndarray, setup: VersionSetup
) -> dict[str, Any]:
    """The estimate's sums over logged rows, their probabilities calibrated as the version's
    reference says (see ``evaluation.cbpe``)."""
    if setup.calibration is not None:
        proba = setup.calibration.apply(classes, proba)
    return tally(classes, predicted, proba)
