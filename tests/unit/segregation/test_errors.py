"""Split requests that cannot work fail with a message naming the problem and the fix."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from gristmill.config.spec import SplitSpec
from gristmill.errors import ConfigError, DataError
from gristmill.segregation import split


def test_an_unknown_strategy_lists_the_known_ones(wine: pa.Table) -> None:
    spec = SplitSpec.model_construct(strategy="alphabetical", test_size=0.25)
    with pytest.raises(ConfigError, match=r"unknown split strategy 'alphabetical'; known: custom"):
        split(wine, spec)


@pytest.mark.parametrize("strategy", ["time", "group"])
def test_time_and_group_need_a_column_of_the_table(strategy: str, wine: pa.Table) -> None:
    with pytest.raises(ConfigError, match=rf"the {strategy} split needs split.column.*alcohol"):
        split(wine, SplitSpec(strategy=strategy))
    with pytest.raises(DataError, match=r"split.column 'when' is not a column.*columns: alcohol"):
        split(wine, SplitSpec(strategy=strategy, column="when"))


def test_time_needs_a_time_on_every_row(penguins: pa.Table) -> None:
    with pytest.raises(DataError, match=r"'bill_length_mm' has 2 rows without a time"):
        split(penguins, SplitSpec(strategy="time", column="bill_length_mm"))


def test_stratified_needs_a_label_in_the_table(wine: pa.Table) -> None:
    spec = SplitSpec(strategy="stratified", seed=0)
    with pytest.raises(ConfigError, match="stratified split needs a label: pass label="):
        split(wine, spec)
    with pytest.raises(DataError, match=r"label 'class' is not a column.*target"):
        split(wine, spec, label="class")


def test_stratified_refuses_a_class_of_one_row(wine: pa.Table) -> None:
    lonely = wine.slice(0, 60)  # 59 rows of class 0 and one of class 1
    with pytest.raises(DataError, match=r"class 1 of label 'target' has only 1 row.*random"):
        split(lonely, SplitSpec(strategy="stratified", seed=0), label="target")


def test_stratified_explains_a_subset_too_small_for_every_class(wine: pa.Table) -> None:
    few = wine.take([0, 1, 60, 61, 150, 151, 152, 153, 154, 155])
    with pytest.raises(DataError, match=r"cannot stratify 10 rows by label 'target'"):
        split(few, SplitSpec(strategy="stratified", test_size=0.2, seed=0), label="target")


@pytest.mark.parametrize(
    ("path", "match"),
    [
        (
            "no_such_module_xyz:split",
            r"cannot import custom split 'no_such_module_xyz:split': "
            r"no module named 'no_such_module_xyz'",
        ),
        ("json:no_such_function", r"module 'json' has no function 'no_such_function'"),
        ("json", r"not an import path; write it as 'package.module:function'"),
        ("json:__name__", r"is not a function but str"),
    ],
)
def test_a_custom_import_path_that_does_not_resolve(path: str, match: str, wine: pa.Table) -> None:
    with pytest.raises(ConfigError, match=match):
        split(wine, SplitSpec(strategy="custom"), custom=path)


def test_custom_needs_a_function_and_only_custom_takes_one(wine: pa.Table) -> None:
    with pytest.raises(ConfigError, match="custom split needs a function"):
        split(wine, SplitSpec(strategy="custom"))
    with pytest.raises(ConfigError, match=r"split\.strategy is 'random'; set strategy: custom"):
        split(wine, SplitSpec(strategy="random"), custom=lambda table: ["train"])


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        (["train"] * 10, r"returned 10 subset names for 178 rows"),
        (["train"] * 177 + ["holdout"], r"subset names \['holdout'\].*known: train"),
        ([None] * 178, r"subset names \[None\]"),
        (object(), r"returned object, not one subset name per row"),
    ],
)
def test_custom_must_name_a_subset_for_every_row(returned: Any, match: str, wine: pa.Table) -> None:
    with pytest.raises(DataError, match=match):
        split(wine, SplitSpec(strategy="custom"), custom=lambda table: returned)


def test_sizes_must_leave_rows_to_train_on(wine: pa.Table) -> None:
    spec = SplitSpec(strategy="random", test_size=0.5, validation_size=0.5)
    with pytest.raises(ConfigError, match="leave no rows to train on; keep their sum below 1"):
        split(wine, spec)


def test_a_count_of_rows_must_leave_rows_to_train_on(wine: pa.Table) -> None:
    # before: the whole table went to test, with an "empty train subset" warning
    spec = SplitSpec(strategy="random", test_size=wine.num_rows)
    with pytest.raises(ConfigError) as caught:
        split(wine, spec)
    assert str(caught.value) == (
        f"split.test_size: {wine.num_rows} rows leave none of the {wine.num_rows} rows to "
        f"train on; give a count below {wine.num_rows} or a share of the rows (a number "
        "between 0 and 1, e.g. 0.25)"
    )
    fits = split(wine, SplitSpec(strategy="random", test_size=wine.num_rows - 1, seed=0))
    assert fits.manifest.sizes["train"] == 1


def test_a_seed_out_of_range_and_an_empty_table_are_refused(wine: pa.Table) -> None:
    with pytest.raises(ConfigError, match=r"split.seed -1 is out of range; use 0 to 4294967295"):
        split(wine, SplitSpec(strategy="random", seed=-1))
    with pytest.raises(DataError, match="cannot split a table without rows"):
        split(wine.slice(0, 0), SplitSpec(strategy="random"))


def test_a_split_without_validation_or_label_says_so(wine: pa.Table) -> None:
    result = split(wine, SplitSpec(strategy="random", seed=0))
    with pytest.raises(ConfigError, match=r"no validation subset; set split\.validation_size"):
        result.table("validation")
    with pytest.raises(ConfigError, match="made without a label; pass label="):
        result.labels("test")
