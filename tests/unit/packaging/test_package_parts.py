"""The parts of a package that need no registry: the lock, model names, the --out check."""

from __future__ import annotations

import importlib.metadata as packages
from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.packaging.lock import Lock, distributions_of, lock
from gristmill.packaging.package import check_out, parse_model


def test_the_lock_pins_the_installed_closure_with_the_extras_asked() -> None:
    served = lock(["gristmill[serve]"]).pins
    assert served["gristmill"] == packages.version("gristmill")
    assert served["onnxruntime"] == packages.version("onnxruntime")
    assert served["numpy"] == packages.version("numpy")  # required by a requirement
    assert "onnxruntime" not in lock(["gristmill"]).pins  # the extra was not asked for


def test_what_is_not_installed_is_reported_not_guessed() -> None:
    found = lock(["numpy", "no-such-distribution-here"])
    assert found.missing == ("no-such-distribution-here",)
    assert set(found.pins) == {"numpy"}


def test_the_lock_reads_as_a_requirements_file() -> None:
    text = Lock({"numpy": "2.0.0", "alembic": "1.0"}).text("line one\nline two")
    assert text == "# line one\n# line two\nalembic==1.0\nnumpy==2.0.0\n"


def test_custom_code_is_mapped_to_its_distribution_or_named_as_local() -> None:
    assert distributions_of(["sklearn", "my_steps.scaling"]) == (
        ["scikit-learn"],
        ["my_steps.scaling"],
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", ("churn", "champion")),
        ("churn@challenger", ("churn", "challenger")),
        ("churn:3", ("churn", 3)),
        ("churn/3", ("churn", 3)),
    ],
)
def test_a_model_is_named_four_ways(text: str, expected: tuple[str, object]) -> None:
    assert parse_model(text) == expected


@pytest.mark.parametrize("text", ["churn:x", ":3", "churn:", "churn/x", "@champion", "churn@"])
def test_a_malformed_model_name_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"NAME|a model version is"):
        parse_model(text)


def test_out_must_be_absent_empty_or_forced(tmp_path: Path) -> None:
    check_out(tmp_path / "absent", force=False)
    check_out(tmp_path, force=False)  # empty
    (tmp_path / "old.txt").write_text("old")
    with pytest.raises(ConfigError, match=r"exists and is not empty.*--force"):
        check_out(tmp_path, force=False)
    check_out(tmp_path, force=True)
    with pytest.raises(ConfigError, match="is a file"):
        check_out(tmp_path / "old.txt", force=True)
