"""``gristmill promote --best [RUN]``: the gate's winner of the newest (or a given) run, with
exit codes and JSON a script can rely on.

The CLI's entry point runs in this process (``gristmill.cli.app.main``), for every verb.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.testing.cli import found
from gristmill.testing.cli import run_cli_here as gm_here
from gristmill.testing.registered import birds_spec
from gristmill.testing.registered import penguins as penguin_frame

pytestmark = pytest.mark.slow

Cli = Callable[..., tuple[int, str, str]]
WEAK = [{"name": "weak", "algorithm": "logistic_regression", "params": {"C": 0.0001}}]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    penguin_frame().to_csv(tmp_path / "penguins.csv", index=False)
    (tmp_path / "birds.yaml").write_text(birds_spec())
    (tmp_path / "weak.yaml").write_text(birds_spec(candidates=WEAK))

    def run(*args: str) -> tuple[int, str, str]:
        return gm_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)

    return run


def test_promote_best_takes_the_gates_winner_and_says_so_to_scripts(cli: Cli) -> None:
    code, out, err = cli("promote", "--best")
    assert code == 1
    assert "no run has evaluated candidates yet" in err

    code, first, err = cli("run", "birds.yaml")
    assert code == 0, err
    first_run = found(r"run (\w{26})", first)
    winner = found(r"(mc_\w{24})", first)

    code, out, err = cli("promote", "--best", "--json")
    assert code == 0, err
    promoted = json.loads(out)  # stdout holds the JSON alone; the messages went to stderr
    assert promoted["promoted"] is True
    assert promoted["candidate_id"] == winner and promoted["run"] == first_run
    assert (promoted["model"], promoted["version"], promoted["alias"]) == ("birds", 1, "champion")
    assert promoted["registered"] is True and promoted["moved"] is True
    assert promoted["previous"] is None and promoted["report"].startswith("lb_")
    assert "registered logreg" in err and "servable: onnx" in err

    code, out, err = cli("run", "weak.yaml")  # a worse candidate: the gate refuses it
    assert code == 0, err
    code, out, err = cli("promote", "--best", "--json")
    assert code == 3
    refused = json.loads(out)
    assert refused["promoted"] is False and refused["candidate"] == "weak"
    assert "does not replace birds version 1 (champion) on accuracy" in refused["reason"]
    assert "nothing promoted: " in err
    code, out, _ = cli("models", "birds", "--json")
    assert [v["version"] for v in json.loads(out)] == [1]  # nothing registered

    code, out, err = cli("promote", "--best", first_run[:10])  # a run by its unique start
    assert code == 0, err
    assert "is birds version 1 already" in out
    assert "birds@champion is version 1 already; nothing moved" in out


def test_promote_best_refuses_what_is_not_a_run(cli: Cli) -> None:
    code, _, err = cli("promote", "--best", "mc_0123")
    assert code == 2
    assert "is a candidate; with --best name a run" in err
    code, _, err = cli("promote")
    assert code == 2
    assert "gristmill promote --best" in err


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["--best"], 1, "no run has evaluated candidates yet"),
        (["--best", "mc_0123"], 2, "is a candidate; with --best name a run"),
        (["--best", "01ZZZZZZZZ"], 1, "01ZZZZZZZZ"),
        ([], 2, "name the candidate to promote"),
    ],
)
def test_promote_json_prints_one_object_even_for_an_error(
    cli: Cli, args: list[str], code: int, error: str
) -> None:
    # before: nothing on stdout, the error on stderr only — a script's json.loads failed
    exit_code, out, err = cli("promote", *args, "--json")
    assert exit_code == code
    answer = json.loads(out)
    assert answer["promoted"] is False and error in answer["error"]
    assert answer["error_type"] in ("NotFoundError", "ConfigError")
    assert error in err
