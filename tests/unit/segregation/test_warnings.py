"""The warnings a split carries: each triggered where it should be, and silent elsewhere."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gristmill.config.spec import SplitSpec
from gristmill.segregation import SplitResult, SplitWarning, Subset, Thresholds, split
from gristmill.segregation.diagnostics import diagnose
from gristmill.segregation.strategies import Plan


def make(table: pa.Table, strategy: str, label: str | None = None, **options: Any) -> SplitResult:
    return split(table, SplitSpec(strategy=strategy, **options), label=label)


def found(result: SplitResult, kind: str, subset: str | None = None) -> list[SplitWarning]:
    return [w for w in result.warnings if w.kind == kind and subset in (None, w.subset)]


def sort_by(table: pa.Table, column: str) -> pa.Table:
    return table.take(pc.sort_indices(table, [(column, "ascending")]))


# -- empty -------------------------------------------------------------------------------


def test_a_ratio_that_rounds_to_no_rows_leaves_an_empty_subset(wine: pa.Table) -> None:
    result = make(wine.slice(0, 3), "random", test_size=0.1, seed=0)
    (warning,) = found(result, "empty")
    assert (warning.subset, warning.numbers) == ("test", {"rows": 0.0, "table_rows": 3.0})
    assert "test_size 0.1 rounds to 0 rows" in warning.message
    assert result.test.num_rows == 0
    assert result.train.num_rows == 3


def test_empty_validation_and_train_are_reported_too(wine: pa.Table) -> None:
    result = make(wine.slice(0, 4), "sequential", test_size=0.1, validation_size=0.1)
    assert {w.subset for w in found(result, "empty")} == {"test", "validation"}
    no_train = make(wine.slice(0, 2), "sequential", test_size=0.5, validation_size=0.4)
    (warning,) = found(no_train, "empty")
    assert warning.subset == "train"
    assert "leave none" in warning.message


def test_empty_is_counted_in_groups_for_a_group_split(penguins: pa.Table) -> None:
    result = make(penguins, "group", test_size=0.1, seed=0, column="island")  # 0.3 of a group
    (warning,) = found(result, "empty")
    assert warning.subset == "test"
    assert "rounds to 0 groups" in warning.message


def test_no_subset_is_empty_when_each_gets_a_row(wine: pa.Table) -> None:
    result = make(wine.slice(0, 10), "random", test_size=0.1, seed=0)
    assert found(result, "empty") == []
    assert result.test.num_rows == 1


# -- small -------------------------------------------------------------------------------


def test_a_subset_under_30_rows_is_small(wine: pa.Table) -> None:
    result = make(wine, "stratified", "target", test_size=0.1, seed=0)
    (warning,) = found(result, "small")
    assert warning.subset == "test"
    assert warning.numbers == {"rows": 18.0, "minimum": 30.0}
    assert "18 rows, fewer than 30" in warning.message


def test_subsets_of_30_rows_or_more_are_not_small(breast_cancer: pa.Table) -> None:
    result = make(breast_cancer, "stratified", "target", test_size=0.1, seed=0)  # 57 rows
    assert found(result, "small") == []
    relaxed = split(
        breast_cancer.slice(0, 100),
        SplitSpec(strategy="random", test_size=0.25, seed=0),
        thresholds=Thresholds(min_rows=20),
    )
    assert found(relaxed, "small") == []
    strict = split(
        breast_cancer.slice(0, 100),
        SplitSpec(strategy="random", test_size=0.25, seed=0),
        thresholds=Thresholds(min_rows=26),
    )
    assert [w.subset for w in found(strict, "small")] == ["test"]


def test_a_subset_without_a_class_is_small(wine: pa.Table) -> None:
    # wine is sorted by class: its last quarter is all class 2.
    result = make(wine, "sequential", "target", test_size=0.25)
    (warning,) = [w for w in found(result, "small") if w.column == "target"]
    assert warning.subset == "test"
    assert warning.numbers == {"absent_classes": 2.0, "classes": 3.0}
    assert "no row of class 0, 1 of label 'target'" in warning.message
    assert found(make(wine, "stratified", "target", seed=0), "small") == []


# -- imbalance ---------------------------------------------------------------------------


def test_class_shares_far_apart_are_imbalance(breast_cancer: pa.Table) -> None:
    ordered = sort_by(breast_cancer, "target")  # 212 of class 0, then 357 of class 1
    result = make(ordered, "sequential", "target", test_size=0.25, validation_size=0.25)
    by_subset = {w.subset: w for w in found(result, "imbalance")}
    assert set(by_subset) == {"validation", "test"}
    test = by_subset["test"]
    assert test.column == "target"
    assert test.numbers["train_share"] == pytest.approx(212 / 285)
    assert test.numbers["subset_share"] == pytest.approx(0.0)
    assert test.numbers["threshold"] == 0.10
    assert "74.4% of train but 0.0% of test" in test.message


def test_a_stratified_split_is_balanced(breast_cancer: pa.Table) -> None:
    result = make(breast_cancer, "stratified", "target", test_size=0.2, validation_size=0.1, seed=0)
    assert found(result, "imbalance") == []


def test_imbalance_threshold_is_in_points_of_share(wine: pa.Table) -> None:
    spec = SplitSpec(strategy="random", test_size=0.25, seed=1)
    result = split(wine, spec, label="target")

    def share(subset: Subset, label: int) -> float:
        return float(pc.mean(pc.equal(result.labels(subset), label)).as_py())

    largest = max(abs(share("test", c) - share("train", c)) for c in (0, 1, 2))
    assert largest > 0.05
    loose = split(wine, spec, label="target", thresholds=Thresholds(imbalance=largest + 0.001))
    tight = split(wine, spec, label="target", thresholds=Thresholds(imbalance=largest - 0.001))
    assert found(loose, "imbalance") == []
    (warning,) = found(tight, "imbalance")
    assert warning.numbers["difference"] == pytest.approx(largest)


def test_a_numeric_label_is_checked_for_shift_not_classes(diabetes: pa.Table) -> None:
    # the highest quarter of the targets last, the rest in their own order: a level shift
    ordered = sort_by(diabetes, "target")
    cut = ordered.num_rows - round(0.25 * ordered.num_rows)
    rest = ordered.slice(0, cut).take(np.random.default_rng(0).permutation(cut))
    table = pa.concat_tables([rest, ordered.slice(cut)])
    result = make(table, "sequential", "target", test_size=0.25)
    assert found(result, "imbalance") == []
    assert "target" in {w.column for w in found(result, "shift")}
    assert result.notes == []  # no trend within train: a level shift is warned about


# -- shift -------------------------------------------------------------------------------


def test_a_time_split_of_trending_series_notes_the_trend_once(macro: pa.Table) -> None:
    result = make(macro, "time", test_size=0.25, column="quarter_start")
    shifted = {w.column for w in found(result, "shift", "test")}
    assert not {"realgdp", "cpi", "pop", "m1"} & shifted  # their shift is their trend
    (note,) = result.notes
    assert note.kind == "trend"
    for column in ("realgdp", "cpi", "pop", "m1"):
        assert f"'{column}'" in note.message
        assert note.numbers[f"rho_{column}"] > 0.9
    assert "quarter" not in note.message  # every quarter in both subsets alike
    assert "a time split puts the later values in test" in note.message
    assert "trend" not in {w.kind for w in result.warnings}
    stored = {w["kind"] for w in result.manifest.warnings}  # kept in the manifest, by kind
    assert "trend" in stored


def test_the_shift_of_a_trend_is_still_measured_as_a_shift(macro: pa.Table) -> None:
    plan = Plan("random", 0.25, None, seed=0)  # not a time split: no trend is noted
    ordered = make(macro, "time", test_size=0.25, column="quarter_start")
    subsets = {"train": ordered.train, "test": ordered.test}
    warnings = diagnose(macro, ordered.rows, subsets, plan, Thresholds())
    gdp = next(w for w in warnings if w.column == "realgdp")
    assert gdp.kind == "shift"
    assert gdp.numbers["psi"] > 0.2
    assert gdp.numbers["p_value"] < 0.01
    assert "column 'realgdp' is distributed differently in test than in train" in gdp.message


def test_a_level_shift_at_the_boundary_is_warned_about_not_noted() -> None:
    rng = np.random.default_rng(1)
    flat = rng.normal(10.0, 1.0, 300)
    flat[225:] += 5.0  # the last quarter jumps: no trend inside train
    rising = np.arange(300.0) + rng.normal(0.0, 5.0, 300)
    table = pa.table({"flat": flat, "rising": rising})
    result = make(table, "sequential", test_size=0.25)
    assert [w.column for w in found(result, "shift")] == ["flat"]
    (note,) = result.notes
    assert "column 'rising' trends with time" in note.message
    assert "'flat'" not in note.message


def test_a_falling_trend_is_noted_and_a_test_against_it_is_not() -> None:
    rng = np.random.default_rng(2)
    falling = -np.arange(300.0) + rng.normal(0.0, 5.0, 300)
    reverted = np.concatenate([falling[:225], -falling[225:]])
    table = pa.table({"falling": falling, "reverted": reverted})
    result = make(table, "sequential", test_size=0.25)
    assert [w.column for w in found(result, "shift")] == ["reverted"]  # against the trend
    (note,) = result.notes
    assert note.numbers["rho_falling"] < -0.9


def test_co2_split_by_count_notes_its_trend() -> None:
    from statsmodels.datasets import co2

    frame = co2.load_pandas().data.reset_index(names="week")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    result = make(table, "time", test_size=104, column="week")
    assert result.test.num_rows == 104  # two years of weeks
    assert found(result, "shift") == []
    (note,) = result.notes
    assert "column 'co2' trends with time" in note.message


def test_the_entity_and_timestamp_are_not_tested_for_shift(macro: pa.Table) -> None:
    # An entity id given in time order (row_id) "shifts" under any time split.
    year, quarter = (pc.cast(macro.column(c), pa.int64()) for c in ("year", "quarter"))
    table = macro.append_column("row_id", pc.add(pc.multiply(year, 4), quarter))
    result = make(table, "time", test_size=0.25, column="quarter_start")
    assert "rho_row_id" in result.notes[0].numbers  # unless told what it is
    plan = Plan("time", 0.25, None, column="quarter_start")
    subsets = {"train": result.train, "test": result.test}
    warnings = diagnose(
        table, result.rows, subsets, plan, Thresholds(), not_features=["row_id", "gone", None]
    )
    assert "row_id" not in {w.column for w in warnings if w.kind == "shift"}
    (note,) = [w for w in warnings if w.kind == "trend"]
    assert "rho_row_id" not in note.numbers
    assert {"rho_realgdp", "rho_cpi"} <= set(note.numbers)
    assert "quarter_start" not in note.message


def test_a_random_split_does_not_shift(breast_cancer: pa.Table, macro: pa.Table) -> None:
    assert found(make(breast_cancer, "random", "target", test_size=0.25, seed=0), "shift") == []
    assert found(make(macro, "random", test_size=0.25, seed=0), "shift") == []


def test_small_subsets_need_a_significant_test_not_only_psi(wine: pa.Table) -> None:
    # wine's 45-row test subsets have PSI above 0.2 on most columns by chance alone.
    result = make(wine, "stratified", "target", test_size=0.25, seed=0)
    assert found(result, "shift") == []


def test_categories_shift_when_groups_differ(penguins: pa.Table) -> None:
    # Gentoo penguins live on Biscoe only: holding out an island moves the species mix.
    result = make(penguins, "group", test_size=0.25, seed=0, column="island")
    assert {w.column for w in found(result, "shift")} >= {"species", "flipper_length_mm"}
    species = next(w for w in result.warnings if w.column == "species")
    assert species.numbers["p_value"] < 0.01
    assert "island" not in {w.column for w in result.warnings}
    assert found(make(penguins, "random", test_size=0.25, seed=0), "shift") == []
