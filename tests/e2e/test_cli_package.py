"""``gristmill package`` writes a directory that serves one version alone: its entry point
runs as a process with no gristmill home around and answers as ``gristmill predict`` does;
a tampered file stops it at start; the Dockerfile and the lock say what they must; wrong
inputs get one clear line.

Versions are trained and registered in this process (``train_and_register``): ``plain``
compiles to ONNX, ``filtered`` (a ``filter`` step) is served natively, and so is ``custom``
(a step named by import path, whose package must be trusted to load).
"""

from __future__ import annotations

import asyncio
import importlib.metadata as packages
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from gristmill.config.settings import load_settings
from gristmill.runtime.wiring import open_services
from gristmill.testing.cli import run_cli_here
from gristmill.testing.registered import train_and_register, write_csv
from gristmill.testing.serving import running_package

pytestmark = pytest.mark.slow

Cli = Callable[..., tuple[int, str, str]]
COLUMNS = ["mean_radius", "mean_texture", "mean_area"]
ONNX, NATIVE, CUSTOM = "plain_logreg", "filtered_logreg", "custom_logreg"
QUANTILES = {"columns": ["mean_texture"], "n_quantiles": 50}


async def _train(folder: Path) -> None:
    settings = load_settings(
        overrides={"home": str(folder / ".gristmill"), "executor": {"backend": "inline"}}
    )
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    cancer = write_csv(frame[[*COLUMNS, "target"]], folder, "cancer")
    frame[COLUMNS].iloc[::57].to_csv(folder / "new.csv", index=False)  # 10 rows
    logreg = [{"name": "logreg", "algorithm": "logistic_regression"}]
    async with open_services(settings) as services:
        for model, steps in (
            ("plain", [{"standardize": {"columns": ["mean_radius", "mean_area"]}}]),
            ("filtered", [{"filter": {"expr": "mean_radius > 12"}}]),
            ("custom", [{"sklearn.preprocessing:QuantileTransformer": QUANTILES}]),
        ):
            await train_and_register(
                services,
                cancer,
                model=model,
                section={"label": "target", "steps": steps},
                candidates=logreg,
                metric="accuracy",
            )


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("package")
    asyncio.run(_train(folder))
    return folder


@pytest.fixture
def cli(where: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        return run_cli_here(*args, cwd=where, monkeypatch=monkeypatch, capsys=capsys)

    return run


def _bare_env(home: Path) -> dict[str, str]:
    """What the entry point gets: no GRISTMILL_ variable, a HOME of its own; PYTHONPATH only
    so that this checkout's gristmill is the one imported."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "PYTHONPATH")}
    env["HOME"] = str(home)
    return env


def _predicted(cli: Cli, where: Path, model: str) -> list[dict[str, object]]:
    out = where / f"{model}-scored.jsonl"
    code, _, err = cli("predict", model, "new.csv", "-o", str(out))
    assert code == 0, err
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize(
    ("model", "kind"), [(ONNX, "onnx"), (NATIVE, "native"), (CUSTOM, "native")]
)
def test_the_entry_point_serves_alone_as_predict_answers(
    cli: Cli, where: Path, tmp_path: Path, model: str, kind: str
) -> None:
    code, out, err = cli("package", model, "--out", str(where / f"dist-{model}"))
    assert code == 0, err
    assert f"packaged {model}/1 ({kind} servable sha256:" in out
    assert "python serve.py" in out and "README.md" in out
    assert not [p for p in where.iterdir() if p.name.startswith(f".dist-{model}")]  # no temp
    package = shutil.copytree(where / f"dist-{model}", tmp_path / "elsewhere" / "pkg")
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    rows = pd.read_csv(where / "new.csv").to_dict(orient="records")
    expected = _predicted(cli, where, model)

    with running_package(package, cwd, _bare_env(home)) as server:
        answer = httpx.post(f"{server.url}/v1/models/{model}/predict", json={"rows": rows})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["model"], body["version"]) == (model, 1)
        assert body["predictions"] == [row["prediction"] for row in expected]
        for got, want in zip(body["probabilities"], expected, strict=True):
            if want["prediction"] is None:  # a row the filter step rejected
                continue
            assert got == pytest.approx([want["p_0"], want["p_1"]], abs=1e-9)
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
        mlflow = httpx.post(f"{server.url}/invocations", json={"dataframe_records": rows[:2]})
        assert mlflow.status_code == 200, mlflow.text
        assert mlflow.json()["predictions"] == body["predictions"][:2]
        other = httpx.post(f"{server.url}/v1/models/churn/predict", json={"rows": rows})
        assert other.status_code == 404 and f"serves {model}/1 only" in other.json()["error"]
    assert [p.name for p in home.iterdir() if p.name != ".cache"] == []
    assert not (cwd / ".gristmill").exists()  # no metadata store was made or looked for


def test_a_tampered_file_is_refused_at_start(cli: Cli, where: Path, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    code, _, err = cli("package", f"{ONNX}@champion", "--out", str(out))
    assert code == 0, err
    graph = next(p for p in (out / "model").glob("*.onnx"))
    graph.write_bytes(graph.read_bytes()[:-1] + b"\0")
    started = subprocess.run(
        [sys.executable, str(out / "serve.py"), "--port", "1"],
        check=False,
        cwd=tmp_path,
        env=_bare_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 1
    assert f"refusing to serve {graph}" in started.stderr
    assert "package the model again" in started.stderr
    assert "Traceback" not in started.stderr and started.stdout == ""


def test_the_dockerfile_lock_and_readme_say_what_they_must(
    cli: Cli, where: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pkg"
    code, _, err = cli("package", f"{ONNX}:1", "--out", str(out))
    assert code == 0, err
    docker = (out / "Dockerfile").read_text()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"FROM python:{python}-slim" in docker
    install = "RUN pip install --no-cache-dir --no-deps --find-links ./wheels -r requirements.txt"
    assert install in docker
    assert re.search(r"^USER model$", docker, re.M) and "useradd" in docker
    assert docker.index("USER model") < docker.index("CMD [")  # it does not run as root
    assert "EXPOSE 8080" in docker
    assert re.search(r"HEALTHCHECK .*\n\s+CMD .*127\.0\.0\.1:8080/readyz", docker)
    assert 'CMD ["python", "serve.py", "--host", "0.0.0.0", "--port", "8080"]' in docker
    for copied in ("requirements.txt", "wheels/", "package.json serve.py", "model/"):
        assert f"COPY {copied}" in docker

    lines = (out / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    locked = dict(line.split("==") for line in pins)
    assert all(re.fullmatch(r"[a-z0-9.\-_]+==[^=\s]+", line) for line in pins), pins
    for name in ("gristmill", "onnxruntime", "numpy", "scikit-learn", "uvicorn", "starlette"):
        assert locked[name] == packages.version(name)
    assert len(locked) > 20  # the transitive closure, not the roots alone

    index = json.loads((out / "package.json").read_text())
    assert (index["model"], index["version"], index["kind"]) == (ONNX, 1, "onnx")
    assert all(digest.startswith("sha256:") for digest in index["files"].values())
    readme = (out / "README.md").read_text()
    assert f"curl -s localhost:8080/v1/models/{ONNX}/predict" in readme
    assert "docker build" in readme and "python serve.py --port 8080" in readme


def test_force_replaces_a_package_whole(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    out.mkdir()
    (out / "old.txt").write_text("old")
    code, _, err = cli("package", f"{NATIVE}/1", "--out", str(out))
    assert code != 0 and f"--out {out} exists and is not empty" in err and "--force" in err
    wheel = tmp_path / "wheelhouse" / "gristmill-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"a wheel")
    code, _, err = cli(
        "package", f"{NATIVE}/1", "--out", str(out), "--force", "--wheel", str(wheel)
    )
    assert code == 0, err
    assert not (out / "old.txt").exists() and (out / "serve.py").is_file()
    assert (out / "wheels" / wheel.name).read_bytes() == b"a wheel"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg", "wheelhouse"]  # no temp left
    code, _, err = cli("package", NATIVE, "--out", str(out), "--force", "--wheel", "nope.whl")
    assert code != 0 and "--wheel nope.whl: no such wheel file" in err
    assert (out / "serve.py").is_file()  # the package that was there is untouched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuch",), "no model named 'nosuch' is registered in this metadata store"),
        ((f"{ONNX}@challenger",), f"{ONNX}@challenger points at no version"),
        ((f"{ONNX}:9",), f"no version 9 of model '{ONNX}'"),
        ((f"{ONNX}/9",), f"no version 9 of model '{ONNX}'"),
        ((f"{ONNX}:x",), "a model version is NAME:NUMBER or NAME/NUMBER"),
    ],
)
def test_wrong_inputs_get_one_clear_line(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, err = cli("package", *args, "--out", str(tmp_path / "pkg"))
    assert code != 0
    assert message in " ".join(err.split()), err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "pkg").exists() and list(tmp_path.iterdir()) == []


def test_help_shows_an_example(cli: Cli) -> None:
    code, out, _ = cli("package", "--help")
    assert code == 0
    assert "gristmill package penguins --out dist/penguins" in out
    assert "NAME:VERSION" in " ".join(out.split())
