"""Each split strategy on real data: sizes, order, determinism, and what it promises."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gristmill.config.spec import SplitSpec
from gristmill.segregation import SUBSETS, SplitResult, membership_table, split
from gristmill.segregation.strategies import Plan, subset_sizes

SEEDED = ["random", "shuffled", "stratified", "group"]


def make(table: pa.Table, strategy: str, **options: Any) -> SplitResult:
    """``split`` with ``column``/``label`` filled in where the strategy needs them."""
    label = options.pop("label", "target" if strategy == "stratified" else None)
    spec = SplitSpec(strategy=strategy, **options)
    return split(table, spec, label=label, feature_set_id="fs-1")


def with_groups(table: pa.Table, size: int = 5) -> pa.Table:
    """``table`` with a ``patient`` column: consecutive rows in groups of ``size``."""
    return table.append_column("patient", pa.array(np.arange(table.num_rows) // size))


def ids(table: pa.Table) -> list[int]:
    return table.column("row_id").to_pylist()


def numbered(table: pa.Table) -> pa.Table:
    return table.append_column("row_id", pa.array(np.arange(table.num_rows)))


@pytest.mark.parametrize(
    ("units", "test_size", "validation_size", "expected"),
    [
        (569, 0.25, None, (427, 0, 142)),  # 142.25 -> 142
        (569, 0.2, 0.1, (398, 57, 114)),  # 113.8 -> 114, 56.9 -> 57
        (10, 0.35, 0.15, (4, 2, 4)),  # 3.5 -> 4, 1.5 -> 2: half rounds up
        (5, 0.7, None, (1, 0, 4)),  # 0.7 * 5 is 3.4999999999999996 in floating point
        (3, 0.1, None, (3, 0, 0)),
        (2, 0.5, 0.4, (0, 1, 1)),
    ],
)
def test_sizes_are_ratios_of_the_units_rounded_half_up(
    units: int, test_size: float, validation_size: float | None, expected: tuple[int, int, int]
) -> None:
    plan = Plan("random", test_size, validation_size)
    assert subset_sizes(units, plan) == expected


@pytest.mark.parametrize(
    ("units", "test_size", "validation_size", "expected"),
    [
        (569, 104, None, (465, 0, 104)),  # a count is taken as it is
        (569, 104, 0.1, (408, 57, 104)),  # a count and a share mix
        (569, 0.25, 50, (377, 50, 142)),
        (100, 150, None, (0, 0, 100)),  # at most the units there are
        (100, 60, 60, (0, 40, 60)),
    ],
)
def test_sizes_may_be_counts_of_units(
    units: int,
    test_size: float | int,
    validation_size: float | int | None,
    expected: tuple[int, int, int],
) -> None:
    plan = Plan("random", test_size, validation_size)
    assert subset_sizes(units, plan) == expected


def test_a_count_of_test_rows_takes_the_last_rows_of_a_sequential_split(
    breast_cancer: pa.Table,
) -> None:
    table = numbered(breast_cancer)
    result = make(table, "sequential", test_size=104, validation_size=52)
    assert result.test.column("row_id").to_pylist() == list(range(465, 569))
    assert result.validation is not None
    assert result.validation.column("row_id").to_pylist() == list(range(413, 465))
    assert result.manifest.params["test_size"] == 104


def test_sequential_takes_the_first_rows_for_train_and_the_last_for_test(
    breast_cancer: pa.Table,
) -> None:
    table = numbered(breast_cancer)
    result = make(table, "sequential", test_size=0.2, validation_size=0.1)
    assert result.manifest.sizes == {"train": 398, "validation": 57, "test": 114}
    assert ids(result.train) == list(range(398))
    assert result.validation is not None
    assert ids(result.validation) == list(range(398, 455))
    assert ids(result.test) == list(range(455, 569))
    assert result.train.equals(table.slice(0, 398))


@pytest.mark.parametrize("strategy", ["sequential", *SEEDED, "time"])
def test_the_subsets_partition_the_rows(strategy: str, breast_cancer: pa.Table) -> None:
    table = numbered(with_groups(breast_cancer))
    column = {"group": "patient", "time": "row_id"}.get(strategy)
    result = make(table, strategy, test_size=0.2, validation_size=0.15, seed=3, column=column)
    parts = [ids(result.table(name)) for name in SUBSETS]
    assert sorted(row for part in parts for row in part) == list(range(569))
    assert all(len(part) > 0 for part in parts)
    sizes = {name: len(part) for name, part in zip(SUBSETS, parts, strict=True)}
    assert result.manifest.sizes == sizes
    assert result.train.schema == table.schema


@pytest.mark.parametrize("strategy", SEEDED)
def test_a_seed_gives_one_split_and_another_seed_another(strategy: str, wine: pa.Table) -> None:
    table = numbered(with_groups(wine, 3))
    options = {"test_size": 0.25, "validation_size": 0.1, "column": "patient"}
    first = make(table, strategy, seed=11, **options)
    again = make(table, strategy, seed=11, **options)
    other = make(table, strategy, seed=12, **options)
    for name in SUBSETS:
        assert first.table(name).equals(again.table(name))
    assert first.split_id == again.split_id
    assert ids(first.test) != ids(other.test)
    assert first.split_id != other.split_id


def test_random_keeps_source_order_and_shuffled_permutes_the_same_rows(
    diabetes: pa.Table,
) -> None:
    table = numbered(diabetes)
    random = make(table, "random", test_size=0.3, seed=5)
    shuffled = make(table, "shuffled", test_size=0.3, seed=5)
    for name in ("train", "test"):
        kept, permuted = ids(random.table(name)), ids(shuffled.table(name))
        assert kept == sorted(kept)
        assert permuted != sorted(permuted)
        assert sorted(permuted) == kept
    assert ids(random.train) != list(range(random.train.num_rows))  # not sequential


def test_an_unseeded_split_records_the_seed_it_drew(diabetes: pa.Table) -> None:
    first = make(diabetes, "random", test_size=0.3)
    seed = first.manifest.params["seed"]
    assert isinstance(seed, int)
    replayed = make(diabetes, "random", test_size=0.3, seed=seed)
    assert replayed.test.equals(first.test)
    assert replayed.split_id == first.split_id


@pytest.mark.parametrize("fixture", ["breast_cancer", "wine"])
def test_stratified_keeps_each_class_share_in_every_subset(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    table: pa.Table = request.getfixturevalue(fixture)
    result = make(table, "stratified", test_size=0.2, validation_size=0.15, seed=0)
    codes = table.column("target").to_numpy()
    classes = np.unique(codes)
    whole = np.array([np.mean(codes == c) for c in classes])
    for name in SUBSETS:
        labels = result.labels(name).to_numpy()
        shares = np.array([np.mean(labels == c) for c in classes])
        # Whole rows per class: a share may be off by at most one row's worth.
        assert np.abs(shares - whole).max() <= 1 / len(labels) + 1e-9, name


def test_stratified_by_text_classes_with_nulls(penguins: pa.Table) -> None:
    result = make(penguins, "stratified", test_size=0.3, seed=1, label="sex")
    whole = penguins.column("sex").null_count / penguins.num_rows  # 11 of 344
    for name in ("train", "test"):
        labels = result.labels(name)
        assert abs(labels.null_count / len(labels) - whole) <= 1 / len(labels)
        assert set(labels.to_pylist()) == {"male", "female", None}
    assert result.manifest.params["label"] == "sex"


def test_time_puts_the_earliest_rows_in_train_and_the_latest_in_test(macro: pa.Table) -> None:
    result = make(macro, "time", test_size=0.2, validation_size=0.1, column="quarter_start")
    assert result.manifest.sizes == {"train": 142, "validation": 20, "test": 41}
    assert result.validation is not None
    train, validation, test = (result.table(name).column("quarter_start") for name in SUBSETS)
    assert pc.max(train).as_py() < pc.min(validation).as_py()
    assert pc.max(validation).as_py() < pc.min(test).as_py()
    assert str(pc.min(test).as_py()) == "1999-07-01"
    for column in (train, validation, test):  # each subset in time order
        values = column.to_pylist()
        assert values == sorted(values)
    assert result.manifest.params == {
        "test_size": 0.2,
        "validation_size": 0.1,
        "column": "quarter_start",
    }


def test_group_never_puts_one_group_in_two_subsets(breast_cancer: pa.Table) -> None:
    table = with_groups(breast_cancer, 5)  # 114 patients of 5 rows (the last of 4)
    result = make(table, "group", test_size=0.25, validation_size=0.1, seed=2, column="patient")
    groups = [set(result.table(name).column("patient").to_pylist()) for name in SUBSETS]
    assert [len(g) for g in groups] == [114 - 29 - 11, 11, 29]  # sizes count groups
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert set().union(*groups) == set(range(114))


def test_group_treats_a_null_key_as_one_group(penguins: pa.Table) -> None:
    result = make(penguins, "group", test_size=0.34, validation_size=0.33, seed=0, column="sex")
    keys = [set(result.table(name).column("sex").to_pylist()) for name in SUBSETS]
    assert sorted(len(k) for k in keys) == [1, 1, 1]
    assert {None} in keys


def by_parity(table: pa.Table) -> list[str]:
    """A custom split: even rows train, odd rows test, every tenth validation."""
    return [
        "validation" if i % 10 == 9 else ("train" if i % 2 == 0 else "test")
        for i in range(table.num_rows)
    ]


def test_custom_split_by_function_and_by_import_path(
    wine: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = numbered(wine)
    spec = SplitSpec(strategy="custom")
    result = split(table, spec, custom=by_parity, feature_set_id="fs-1")
    assert ids(result.train) == [i for i in range(178) if i % 2 == 0 and i % 10 != 9]
    assert result.validation is not None
    assert ids(result.validation) == list(range(9, 178, 10))
    params = result.manifest.params
    assert params["custom"].endswith(":by_parity")
    assert params["assignment"].startswith("sha256:")

    (tmp_path / "my_splits.py").write_text(
        "import pyarrow.compute as pc\n"
        "def by_alcohol(table):\n"
        "    strong = pc.greater(table['alcohol'], 13.0)\n"
        "    return pc.if_else(strong, 'test', 'train')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_splits", raising=False)
    by_path = split(table, spec, custom="my_splits:by_alcohol", feature_set_id="fs-1")
    assert pc.all(pc.greater(by_path.test["alcohol"], 13.0)).as_py()
    assert pc.all(pc.less_equal(by_path.train["alcohol"], 13.0)).as_py()
    assert by_path.validation is None
    assert by_path.manifest.params["custom"] == "my_splits:by_alcohol"
    assert by_path.split_id != result.split_id
    dotted = split(table, spec, custom="my_splits.by_alcohol", feature_set_id="fs-1")
    assert dotted.manifest.params["custom"] == "my_splits:by_alcohol"
    assert dotted.split_id == by_path.split_id


def test_a_custom_split_with_another_outcome_gets_another_id(wine: pa.Table) -> None:
    spec = SplitSpec(strategy="custom")

    def first_half(table: pa.Table) -> list[str]:
        return ["train" if i < 89 else "test" for i in range(table.num_rows)]

    one = split(wine, spec, custom=first_half)
    other = split(wine.slice(1), spec, custom=first_half)
    assert one.manifest.params["custom"] == other.manifest.params["custom"]
    assert one.split_id != other.split_id
    assert split(wine, spec, custom=first_half).split_id == one.split_id


def test_membership_table_says_which_subset_each_row_is_in(wine: pa.Table) -> None:
    table = numbered(wine)
    result = make(table, "shuffled", test_size=0.25, validation_size=0.2, seed=4)
    membership = membership_table(result)
    assert membership.column_names == ["row", "subset"]
    assert membership.column("row").to_pylist() == list(range(178))
    subsets = membership.column("subset").to_pylist()
    for name in SUBSETS:
        rows = [row for row, subset in enumerate(subsets) if subset == name]
        assert rows == sorted(ids(result.table(name)))
    assert membership_table(
        make(table, "random", test_size=0.25, validation_size=0.2, seed=4)
    ).equals(membership)


def test_features_and_labels_split_the_label_off(breast_cancer: pa.Table) -> None:
    result = make(breast_cancer, "stratified", test_size=0.25, seed=0)
    features = result.features("test")
    assert "target" not in features.column_names
    assert features.num_columns == breast_cancer.num_columns - 1
    assert result.labels("test").equals(result.test.column("target"))
    assert result.features().num_rows == result.train.num_rows
    unlabelled = make(breast_cancer, "random", test_size=0.25, seed=0)
    assert unlabelled.features("test").equals(unlabelled.test)


def test_the_manifest_records_the_split(breast_cancer: pa.Table) -> None:
    result = make(breast_cancer, "stratified", test_size=0.25, seed=9)
    manifest = result.manifest
    assert manifest.feature_set_id == "fs-1"
    assert manifest.strategy == "stratified"
    assert manifest.params == {
        "test_size": 0.25,
        "validation_size": None,
        "seed": 9,
        "label": "target",
    }
    assert manifest.sizes == {"train": 427, "test": 142}
    assert manifest.split_id.startswith("sp_")
    assert manifest.membership is None
    assert manifest.created_at.tzinfo is not None
    assert manifest.warnings == [w.to_dict() for w in result.warnings]
    json.dumps(manifest.params)
    json.dumps(manifest.warnings)
    elsewhere = split(
        breast_cancer,
        SplitSpec(strategy="stratified", test_size=0.25, seed=9),
        label="target",
        feature_set_id="fs-2",
    )
    assert elsewhere.split_id != manifest.split_id
    assert elsewhere.test.equals(result.test)
