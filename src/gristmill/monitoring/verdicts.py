"""The drift of a window: each column's counts held against its reference, by the spec's rule.

Every statistic that applies is computed from the counts (``features.validation.drift``,
the implementation preparation and segregation use): PSI on the decile bins or categories
(a category the reference never had is one more bin, empty in the reference), chi-square
on the same counts, KS from the KS bins (numbers only). The column's rule
(``config.monitoring.DriftSpec.for_column``) picks the one that decides (``method``) and its
threshold; a column with fewer than ``min_rows`` present values in the window, one the
spec says to ``ignore`` (``ignored: true``), or an identifier a reference made before
identifiers were skipped still holds (``identifier: true``, ``profile.looks_like_identifier``)
is not judged (``judged: false``) and never drifts.
"""

from __future__ import annotations

from typing import Any

from gristmill.config.monitoring import ColumnRule, DriftMethodName, DriftSpec
from gristmill.features.validation.drift import (
    DriftResult,
    chi2_test,
    ks_from_counts,
    p_value_result,
    psi,
    psi_result,
)
from gristmill.features.validation.profiles import json_value
from gristmill.monitoring.profile import ColumnReference, DriftReference, looks_like_identifier
from gristmill.monitoring.window_counts import Counts, Tally


def judged(counts: Counts, reference: DriftReference, drift: DriftSpec) -> dict[str, Any]:
    """Each counted column's result (``column_result``), by column name."""
    tallies: dict[str, Tally] = counts.get("columns", {})
    return {
        column.name: column_result(column, tallies[column.name], drift.for_column(column.name))
        for column in reference.columns
        if column.name in tallies
    }


def drifted(results: dict[str, Any]) -> list[str]:
    """The columns whose result says they drifted, in the results' order."""
    return [name for name, result in results.items() if result.get("drifted")]


def column_result(column: ColumnReference, tally: Tally, rule: ColumnRule) -> dict[str, Any]:
    """The statistics of one column in one window and its verdict (JSON values)."""
    if column.kind == "numeric":
        reference, current = list(column.counts), list(tally["bins"])
        ks, ks_p = ks_from_counts(column.ks_counts, tally["ks"])
        new = 0
    else:
        new = int(tally["new"])
        reference, current = [*column.counts, 0], [*tally["counts"], new]
        ks, ks_p = None, None
    present = sum(current)
    figures: dict[str, Any] = {
        "kind": column.kind,
        "rows": present,
        "missing": int(tally["missing"]),
        "new": new,
        "psi": None,
        "ks": ks,
        "ks_pvalue": ks_p,
        "chi2": None,
        "chi2_pvalue": None,
    }
    if present:
        figures["psi"] = psi(reference, current)
        figures["chi2"], figures["chi2_pvalue"] = chi2_test(reference, current)
    method = _method(rule.method, column.kind)
    verdict = _verdict(method, figures, rule) if present else None
    identifier = looks_like_identifier(column)
    judge = present >= rule.min_rows and not rule.ignore and not identifier and verdict is not None
    figures |= {
        "ignored": rule.ignore,
        "identifier": identifier,
        "method": method,
        "statistic": None if verdict is None else verdict.statistic,
        "p_value": None if verdict is None else verdict.p_value,
        "threshold": _threshold(method, rule),
        "min_rows": rule.min_rows,
        "judged": judge,
        "drifted": bool(judge and verdict is not None and verdict.drifted),
    }
    result: dict[str, Any] = json_value(figures)
    return result


def _method(method: DriftMethodName, kind: str) -> str:
    if method == "auto":
        return "psi" if kind == "numeric" else "chi2"
    if method == "ks" and kind != "numeric":
        return "chi2"  # KS does not apply to categories
    return method


def _threshold(method: str, rule: ColumnRule) -> float:
    return {"psi": rule.psi, "ks": rule.ks_pvalue, "chi2": rule.chi2_pvalue}[method]


def _verdict(method: str, figures: dict[str, Any], rule: ColumnRule) -> DriftResult:
    if method == "psi":
        return psi_result(figures["psi"], rule.psi)
    if method == "ks":
        return p_value_result("ks", figures["ks"], figures["ks_pvalue"], rule.ks_pvalue)
    return p_value_result("chi2", figures["chi2"], figures["chi2_pvalue"], rule.chi2_pvalue)
