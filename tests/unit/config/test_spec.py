"""The pipeline spec: typed sections, and errors that name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.config.spec import SplitSpec, load_spec, parse_spec
from gristmill.errors import SpecError

EXAMPLE = Path(__file__).parents[3] / "examples" / "penguins" / "pipeline.yaml"


def _spec(**sections: object) -> dict[str, object]:
    return {"name": "p", "sources": {"s": {"format": "csv", "path": "a.csv"}}, **sections}


def test_example_spec_is_valid_and_skips_no_section() -> None:
    spec = load_spec(EXAMPLE)
    assert set(spec.sources) == {"penguins", "wine", "field_notes"}
    assert spec.sources["penguins"].name == "penguins"
    assert Path(spec.sources["wine"].path or "").is_absolute()
    assert spec.skipped_sections() == []  # deploy: is the deployment stage's
    assert set(spec.features or {}) == {"penguins_v1", "wine_v1"}


def test_wrong_format_names_key_path_and_choices() -> None:
    data = {"name": "p", "sources": {"customers": {"format": "xlsx", "path": "c.xlsx"}}}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert (
        "sources.customers.format",
        "'xlsx' is not one of csv, parquet, jsonl, sql, folder",
    ) in info.value.problems


@pytest.mark.parametrize(
    ("sections", "path", "fragment"),
    [
        ({"split": {"strategy": "rand"}}, "split.strategy", "'rand' is not one of"),
        ({"train": {"candidates": []}}, "train.candidates", "at least 1"),
        ({"train": {"candidates": [{"name": "a"}]}}, "train.candidates.0.algorithm", "missing"),
        ({"evaluate": {"metric": "f1", "extra": 1}}, "evaluate.extra", "unknown key"),
        ({"deploy": {"canary": 2}}, "deploy.canary", "less than 1"),
        ({"deploy": {"canary": 0}}, "deploy.canary", "greater than 0"),
        (
            {"deploy": {"canary_requests": 0}},
            "deploy.canary_requests",
            "give a number at least 1",
        ),
        ({"deploy": {"policy": "yolo"}}, "deploy.policy", "'yolo' is not one of"),
    ],
)
def test_sections_of_later_stages_must_be_well_formed(
    sections: dict[str, object], path: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_spec(**sections))
    assert any(p == path and fragment in m for p, m in info.value.problems), info.value.problems


def test_sql_source_needs_url_and_query() -> None:
    with pytest.raises(SpecError, match=r"sources\.s: a sql source needs both"):
        parse_spec({"name": "p", "sources": {"s": {"format": "sql", "url": "sqlite://"}}})


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("name: p\nsources:\n  s: {format: csv, path: [\n")
    with pytest.raises(SpecError, match=r"p\.yaml: line \d+"):
        load_spec(bad)


def test_missing_spec_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read pipeline spec"):
        load_spec(tmp_path / "absent.yaml")


def test_wrong_names_are_reported_with_the_other_errors_at_once() -> None:
    data = _spec(
        features={"f": {"from": ["nope"], "label": "y", "stepz": []}},
        train={"feature_set": "g", "candidates": [{"name": "a", "algorithm": "ridge"}]},
    )
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    paths = [path for path, _ in info.value.problems]
    assert paths == ["features.f.stepz", "features.f.from", "train.feature_set"]
    assert "names 'nope', which is not a source; sources: s" in str(info.value)
    assert "names 'g', which is not a feature set; feature sets: f" in str(info.value)
    del data["features"]["f"]["stepz"]  # type: ignore[index]
    with pytest.raises(SpecError) as again:  # with no other error, both still in one round
        parse_spec(data)
    assert [path for path, _ in again.value.problems] == paths[1:]


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0.25, 0.25), (104, 104), (1, 1)],
)
def test_test_size_is_a_share_or_a_count(size: float | int, expected: float | int) -> None:
    split = SplitSpec(strategy="sequential", test_size=size, validation_size=size)
    assert split.test_size == expected and type(split.test_size) is type(expected)
    assert split.validation_size == expected


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (1.0, "neither a share of the rows (a number between 0 and 1, e.g. 0.25) nor a count"),
        (1.5, "1.5 is neither a share"),
        (0, "0 is neither a share of the rows"),
        (-3, "nor a count of rows (a whole number of at least 1, e.g. 104)"),
        # before: two lines, "split.test_size.int: Input should be a valid integer …"
        ("a lot", "'a lot' is neither a share of the rows (a number between 0 and 1"),
        (True, "True is neither a share"),  # before: accepted as a count of 1
    ],
)
def test_a_test_size_that_is_neither_is_refused_by_key(size: object, message: str) -> None:
    data = {
        "name": "p",
        "sources": {"s": {"format": "csv", "path": "s.csv"}},
        "split": {"strategy": "sequential", "test_size": size},
    }
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert "split.test_size" in str(caught.value)
    assert message in str(caught.value)
