"""Evidently's side of bench/bench_monitoring.py; run with bench/.venv-evidently/bin/python.

Usage: ``bench_evidently.py --reference REF.parquet --current CUR.parquet [--repeats N]``

Reads both frames into pandas (not timed), then times ``Report(metrics=[DataDriftPreset()])
.run(reference_data=…, current_data=…)`` with Evidently's defaults (for more than 1,000 rows:
normed Wasserstein distance > 0.1 for numbers, Jensen-Shannon distance > 0.1 for
categories) and with PSI for every column (threshold 0.2, gristmill's default), best of
``--repeats``, and prints one JSON object: per configuration the seconds and each column's
test, score and verdict.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from typing import Any

import evidently
import pandas as pd
from evidently.metric_preset import DataDriftPreset
from evidently.report import Report

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "psi": {"stattest": "psi", "stattest_threshold": 0.2},
}


def run(reference: pd.DataFrame, current: pd.DataFrame, options: dict[str, Any]) -> Report:
    report = Report(metrics=[DataDriftPreset(**options)])
    report.run(reference_data=reference, current_data=current)
    return report


def columns_of(report: Report) -> dict[str, dict[str, Any]]:
    for metric in report.as_dict()["metrics"]:
        if metric["metric"] == "DataDriftTable":
            return {
                name: {
                    "test": found["stattest_name"],
                    "score": found["drift_score"],
                    "drifted": bool(found["drift_detected"]),
                }
                for name, found in metric["result"]["drift_by_columns"].items()
            }
    raise RuntimeError("the report has no DataDriftTable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True)
    parser.add_argument("--current", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    figures: dict[str, Any] = {"evidently": evidently.__version__, "pandas": pd.__version__}
    for name, options in CONFIGURATIONS.items():
        best, report = float("inf"), None
        for _ in range(args.repeats):
            started = time.perf_counter()
            report = run(reference, current, options)
            best = min(best, time.perf_counter() - started)
        assert report is not None
        figures[name] = {"seconds": best, "columns": columns_of(report)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
