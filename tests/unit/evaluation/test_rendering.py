"""Curves drawn to image files a person opens: valid PNGs of a reasonable size, or SVG."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from matplotlib.image import imread

from gristmill.evaluation import evaluate, render_curves

from .conftest import Output

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_classification_pictures(wine: Output, tmp_path: Path) -> None:
    result = evaluate("classification", [], wine.y_true, wine.y_pred, wine.proba)
    files = render_curves(result, tmp_path / "pictures")
    assert set(files) == {"roc", "pr", "calibration", "confusion_matrix"}
    for name, path in files.items():
        assert path == tmp_path / "pictures" / f"{name}.png"
        width, height = _png_size(path)
        assert (width, height) == (704, 572)
        assert 15_000 < path.stat().st_size < 500_000
        pixels = imread(path)
        assert pixels.shape[:2] == (height, width)
        assert np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0).shape[0] > 10  # drawn


def test_regression_picture_and_svg(diabetes: Output, tmp_path: Path) -> None:
    result = evaluate("regression", [], diabetes.y_true, diabetes.y_pred)
    files = render_curves(result, tmp_path)
    assert set(files) == {"residuals"}
    assert _png_size(files["residuals"]) == (704, 572)
    svg = render_curves(result, tmp_path, image_format="svg")["residuals"]
    text = svg.read_text()
    assert svg.suffix == ".svg" and "<svg" in text
    assert "Residuals against predictions" in text or "Residuals" in text


def test_the_legend_carries_the_auc(cancer: Output, tmp_path: Path) -> None:
    result = evaluate("classification", ["roc_auc"], cancer.y_true, cancer.y_pred, cancer.proba)
    svg = render_curves(result, tmp_path, image_format="svg")["roc"].read_text()
    auc = result.metrics["roc_auc"]
    # SVG text is drawn as glyph paths; the figure keeps the string in a comment per text.
    assert f"AUC = {auc:.3f}" in svg
    assert "False positive rate" in svg and "ROC curve" in svg
