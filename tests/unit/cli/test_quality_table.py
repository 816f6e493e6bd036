"""The live quality table: a window measured on a handful of labelled rows reads as such."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from gristmill.cli.monitor_quality import LiveQuality, QualityRow, quality_table
from gristmill.stores.feedback import FeedbackCounts, QualityWindow


def _shown(labelled: int) -> str:
    window = QualityWindow(
        model="birds",
        version=1,
        window_seconds=3600,
        window_start=datetime(2024, 5, 1, 12, tzinfo=UTC),
        predictions=200,
        classes=["Adelie", "Chinstrap", "Gentoo"],
        labelled=labelled,
        metrics={"accuracy": 1.0, "f1": 1.0, "roc_auc": None},
    )
    quality = LiveQuality("birds", [QualityRow(window)], FeedbackCounts(received=labelled))
    console = Console(width=250, record=True)
    console.print(quality_table(quality))
    return console.export_text()


def test_figures_of_few_labelled_rows_are_marked_rough() -> None:
    few = _shown(1)
    assert "1.000*" in few and "1 (0%)" in few
    assert "*: measured on fewer than 30 labelled rows" in " ".join(few.split())
    assert "1.000*" not in _shown(120)
