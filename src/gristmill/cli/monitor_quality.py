"""The "Live quality" part of ``gristmill monitor``: read a model's quality windows, draw them.

``read_quality`` is the read side (the metadata store's feedback windows and counts, the
label-free estimate's figures made from its sums); ``quality_table`` draws one row per
version and window: predictions logged, how many got a label (and of them late, duplicated,
unusable), the live figures, the estimate (CBPE) over every logged prediction, and the
estimate's own error on the labelled ones. Imported when the verb runs: it brings the
evaluation code (numpy, scikit-learn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rich.table import Table

from gristmill.evaluation.cbpe import figures
from gristmill.stores.feedback import FeedbackCounts, QualityWindow
from gristmill.stores.metadata import MetadataStore

FEW_LABELLED = 30
"""Figures measured on fewer labelled rows than this are marked as rough (``*``)."""
CLASSIFIER_FIGURES = ("accuracy", "f1", "roc_auc")
REGRESSOR_FIGURES = ("rmse", "mae", "mape")
HEADERS = {"accuracy": "acc", "roc_auc": "auc"}


@dataclass(frozen=True)
class QualityRow:
    """One version's window as shown: its stored figures and the estimate's."""

    window: QualityWindow
    estimated: dict[str, float | None] = field(default_factory=dict)

    @property
    def classifier(self) -> bool:
        return bool(self.window.classes) or "accuracy" in self.window.metrics


@dataclass(frozen=True)
class LiveQuality:
    """A model's quality windows (oldest first) and how its feedback fared."""

    model: str
    rows: list[QualityRow]
    counts: FeedbackCounts
    """Outcomes that name the model or joined its predictions."""
    waiting_anywhere: int = 0
    """Outcomes of any model (or naming none) that joined nothing yet: a request id alone
    cannot say which model an unknown one was meant for."""


def read_quality(
    metadata: MetadataStore,
    model: str,
    *,
    version: int | None = None,
    since: datetime | None = None,
    window_seconds: int | None = None,
) -> LiveQuality:
    """``model``'s windows (of one version, of one length, from ``since`` on)."""
    windows = metadata.feedback.list_windows(
        model, version, since=since, window_seconds=window_seconds
    )
    rows = [
        QualityRow(w, figures(w.estimate, w.classes) if w.classes and w.estimate else {})
        for w in windows
    ]
    counts = metadata.feedback.counts(model)
    return LiveQuality(model, rows, counts, metadata.feedback.counts().waiting)


def _number(value: float | None, signed: bool = False, *, rough: bool = False) -> str:
    if value is None:
        return "-"
    return (f"{value:+.3f}" if signed else f"{value:.3f}") + ("*" if rough else "")


def _window(row: QualityRow) -> str:
    start = row.window.window_start
    seconds = row.window.window_seconds
    length = f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"
    if seconds % 60:
        length = f"{seconds}s"
    return f"{start:%Y-%m-%d %H:%M} +{length}"


def quality_table(quality: LiveQuality) -> Table:
    """One row per version and window; figures the model has, estimate columns for
    classifiers; the feedback counts as the caption."""
    classifier = any(r.classifier for r in quality.rows)
    shown = CLASSIFIER_FIGURES if classifier else REGRESSOR_FIGURES
    table = Table(title=f"Live quality of {quality.model}", title_justify="left")
    for name in ("version", "window (UTC)", "predictions", "labelled", "late", "duplicates"):
        left = name.startswith("window")
        table.add_column(name, justify="left" if left else "right", no_wrap=True)
    for name in shown:
        table.add_column(HEADERS.get(name, name), justify="right", no_wrap=True)
    if classifier:
        for name in shown:
            table.add_column(f"est {HEADERS.get(name, name)}", justify="right", no_wrap=True)
        table.add_column("est err", justify="right", no_wrap=True)
    for row in quality.rows:
        window = row.window
        rough = 0 < window.labelled < FEW_LABELLED
        labelled = f"{window.labelled}"
        if window.predictions:
            labelled += f" ({window.labelled / window.predictions:.0%})"
        if window.unusable:
            labelled += f", {window.unusable} unusable"
        cells = [
            str(window.version),
            _window(row),
            str(window.predictions),
            labelled,
            str(window.late),
            str(window.duplicates),
            *(_number(window.metrics.get(name), rough=rough) for name in shown),
        ]
        if classifier:
            cells += [_number(row.estimated.get(name)) for name in shown]
            cells.append(_number(window.estimate_error.get("accuracy"), signed=True))
        table.add_row(*cells)
    counts = quality.counts
    table.caption = (
        f"feedback: {counts.received} outcome(s) received, {counts.joined} joined to their "
        f"predictions, {counts.waiting} waiting; of every model, {quality.waiting_anywhere} "
        "waiting (an unknown request id, or a prediction not logged yet). acc: accuracy, auc: "
        "ROC AUC; est: estimated without labels from every logged prediction's probabilities "
        "(CBPE); est err: the estimated accuracy of the labelled rows minus their real one. "
        f"*: measured on fewer than {FEW_LABELLED} labelled rows (see labelled), a rough figure."
    )
    table.caption_justify = "left"
    return table
