"""``gristmill promote`` compiles the servable, ``predict`` scores a file through it,
``compile`` shows it; wrong inputs get one clear line, never a traceback.

The run and the promotion are real processes; the other cases call the CLI's entry point in
this process (``gristmill.cli.app.main``), to spare a start-up per case.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from gristmill.testing.cli import cli_stdout as gm
from gristmill.testing.cli import found
from gristmill.testing.cli import run_cli_here as gm_here
from gristmill.testing.registered import birds_spec
from gristmill.testing.registered import penguins as penguin_frame

pytestmark = pytest.mark.slow

SPEC = birds_spec()
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("predict")
    penguins = penguin_frame()
    penguins.to_csv(folder / "penguins.csv", index=False)
    penguins.drop(columns=["species"]).head(8).to_csv(folder / "new.csv", index=False)
    penguins.head(8).to_parquet(folder / "new.parquet", index=False)
    penguins.head(3).to_json(folder / "new.jsonl", orient="records", lines=True)
    penguins.drop(columns=["island"]).head(3).to_csv(folder / "no_island.csv", index=False)
    for name, row in (("abc_row2.csv", 2), ("abc_row0.csv", 0)):  # Arrow guesses text at 0
        bad = penguins.drop(columns=["species"]).head(5).astype({"bill_length_mm": object})
        bad.loc[row, "bill_length_mm"] = "abc"
        bad.to_csv(folder / name, index=False)
    (folder / "birds.yaml").write_text(SPEC)
    summary = gm("run", "birds.yaml", cwd=folder)
    candidate = found(r"(mc_\w{24})", summary)
    promoted = gm("promote", candidate, "--model", "birds", cwd=folder)
    assert "servable: onnx (parity: " in promoted and "classes equal" in promoted
    return folder


@pytest.fixture
def cli(where: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        return gm_here(*args, cwd=where, monkeypatch=monkeypatch, capsys=capsys)

    return run


def test_predict_prints_a_table_and_writes_files(cli: Cli, where: Path) -> None:
    code, out, err = cli("predict", "birds", "new.csv")
    assert code == 0, err
    assert "prediction" in out and "p_Adelie" in out and "Adelie" in out
    assert "8 row(s) scored by birds/1 (onnx servable)" in out

    code, out, err = cli("predict", "birds/1", "new.parquet", "-o", "scored.parquet")
    assert code == 0, err
    scored = pq.read_table(where / "scored.parquet").to_pandas()
    assert list(scored.columns) == ["row", "prediction", "p_Adelie", "p_Chinstrap", "p_Gentoo"]
    truth = pd.read_parquet(where / "new.parquet")["species"]
    assert (scored["prediction"] == truth).mean() >= 0.75

    code, out, err = cli("predict", "birds@champion", "new.jsonl", "--json")
    assert code == 0, err
    records = json.loads(out[: out.rindex("]") + 1])
    assert len(records) == 3 and {"row", "prediction", "p_Gentoo"} <= set(records[0])


def test_compile_shows_the_manifest(cli: Cli) -> None:
    code, out, err = cli("compile", "birds")
    assert code == 0, err
    assert "birds/1: onnx servable sha256:" in out
    assert "parity: " in out and "test rows of split" in out
    assert "island" in out and "penguin_id" not in out.split("input columns")[1]

    code, out, err = cli("compile", "birds/1", "--json")
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["kind"] == "onnx" and manifest["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert manifest["entity"] == "penguin_id" and manifest["view"] == "penguins_v1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("predict", "birds", "no_island.csv"), "column 'island' is missing"),
        (("predict", "birds@nope", "new.csv"), "birds@nope points at no version"),
        (("predict", "birds/7", "new.csv"), "no version 7 of model 'birds'"),
        (("predict", "fish", "new.csv"), "no model named 'fish' is registered"),
        (("predict", "birds", "new.txt"), "name it .csv, .parquet or .jsonl"),
        (("predict", "birds", "absent.csv"), "no file absent.csv"),
        (("predict", "birds/x", "new.csv"), "a model version is <model>/<number>"),
        (("predict", "birds", "new.csv", "-o", "nowhere/x.csv"), "folder nowhere does not exist"),
        (
            ("predict", "birds", "abc_row2.csv"),
            "CSV column 'bill_length_mm' takes numbers (an empty field for a missing value); "
            "row 2 (line 4) holds 'abc'",
        ),
        (("predict", "birds", "abc_row0.csv"), "row 0 (line 2) holds 'abc'"),
    ],
)
def test_wrong_inputs_get_one_clear_line(cli: Cli, args: tuple[str, ...], message: str) -> None:
    code, out, err = cli(*args)
    assert code != 0
    assert message in err, err
    assert "Traceback" not in err + out


def test_a_version_that_cannot_be_served_is_not_promoted(cli: Cli, where: Path) -> None:
    code, out, err = cli("ls", "candidates")
    candidate = found(r"(mc_\w{24})", out)
    models = where / ".gristmill" / "artifacts" / "model"
    kept = {path: path.read_bytes() for path in models.iterdir() if "." not in path.name}
    try:
        for path, data in kept.items():  # the trained model's bytes altered on disk
            path.write_bytes(data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]))
        code, out, err = cli("promote", candidate, "--model", "birds_twin")
    finally:
        for path, data in kept.items():
            path.write_bytes(data)
    assert code != 0 and "Traceback" not in err + out
    assert "birds_twin/1 cannot be served, so no alias moves to it" in err, err
    code, out, err = cli("models", "birds_twin")
    assert "champion" not in out
