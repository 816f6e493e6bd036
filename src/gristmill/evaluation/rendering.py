"""Curves as pictures a person opens: one PNG (or SVG) per curve in an evaluation result.

Figures are drawn with matplotlib's object API on the Agg canvas: no display, no pyplot
global state, safe in worker processes and threads. Every figure has a title, labelled
axes and a legend giving each line's score (AUC, average precision, Brier).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gristmill.evaluation.result import EvaluationResult

ImageFormat = Literal["png", "svg"]
MARGINS = {
    "default": {"left": 0.11, "right": 0.97, "bottom": 0.1, "top": 0.93},
    "confusion_matrix": {"left": 0.15, "right": 0.97, "bottom": 0.2, "top": 0.93},
}


def render_curves(
    result: EvaluationResult, out_dir: Path | str, *, image_format: ImageFormat = "png"
) -> dict[str, Path]:
    """Draw each curve of ``result`` (and its confusion matrix) into ``out_dir``.

    Returns the file of each picture by name (``roc``, ``pr``, ``calibration``,
    ``residuals``, ``confusion_matrix``); files of the same name are replaced.
    """
    # matplotlib is imported when a picture is drawn, not with the package: executor
    # workers load the evaluation code before their first task and most only train.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    drawers: dict[str, tuple[Callable[[Any, Any], None], Any]] = {}
    draw: Callable[[Any, Any], None]
    for name, draw in (
        ("roc", _roc), ("pr", _pr), ("calibration", _calibration), ("residuals", _residuals),
    ):  # fmt: skip
        if name in result.curves:
            drawers[name] = (draw, result.curves[name])
    if isinstance(result.metrics.get("confusion_matrix"), dict):
        drawers["confusion_matrix"] = (_confusion, result.metrics["confusion_matrix"])
    files: dict[str, Path] = {}
    for name, (draw, data) in drawers.items():
        figure = Figure(figsize=(6.4, 5.2))
        FigureCanvasAgg(figure)
        # Fixed margins, not a layout engine: a constrained layout measures every text
        # twice and costs more than the drawing (these figures all have one shape).
        figure.subplots_adjust(**MARGINS.get(name, MARGINS["default"]))
        draw(figure.subplots(), data)
        path = folder / f"{name}.{image_format}"
        figure.savefig(path, format=image_format, dpi=110)
        files[name] = path
    return files


def _roc(ax: Any, curve: dict[str, Any]) -> None:
    for cls, line in curve["classes"].items():
        ax.plot(line["fpr"], line["tpr"], label=f"{cls} (AUC = {_fmt(line['auc'])})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance (AUC = 0.5)")
    _frame(ax, "ROC curve", "False positive rate", "True positive rate", "lower right")


def _pr(ax: Any, curve: dict[str, Any]) -> None:
    for cls, line in curve["classes"].items():
        ax.step(
            line["recall"],
            line["precision"],
            where="post",
            label=f"{cls} (AP = {_fmt(line['average_precision'])})",
        )
    _frame(ax, "Precision-recall curve", "Recall", "Precision", "lower left")


def _calibration(ax: Any, curve: dict[str, Any]) -> None:
    for cls, line in curve["classes"].items():
        ax.plot(line["mean_predicted"], line["fraction_positive"], marker="o", label=str(cls))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    title = f"Calibration (reliability), Brier = {_fmt(curve.get('brier'))}"
    _frame(ax, title, "Mean predicted probability", "Fraction of positives", "upper left")


def _residuals(ax: Any, curve: dict[str, Any]) -> None:
    ax.scatter(curve["predicted"], curve["residual"], s=12, alpha=0.7, label="residual")
    ax.axhline(0.0, linestyle="--", color="grey", label="zero error")
    ax.set_title("Residuals against predictions")
    ax.set_xlabel("Predicted value")
    ax.set_ylabel("Residual (true - predicted)")
    ax.legend(loc="best")


def _confusion(ax: Any, table: dict[str, Any]) -> None:
    matrix = np.asarray(table["matrix"])
    labels = [str(c) for c in table["labels"]]
    image = ax.imshow(matrix, cmap="Blues")
    ax.figure.colorbar(image, ax=ax, label="rows (count)")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    middle = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > middle else "black"
        ax.text(column, row, str(count), ha="center", va="center", color=colour)
    ax.set_title("Confusion matrix")
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")


def _frame(ax: Any, title: str, x: str, y: str, legend: str) -> None:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_title(title)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(loc=legend, fontsize="small")


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"
