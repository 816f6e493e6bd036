"""Training and evaluation through a run: candidates in parallel, retries, resume, the gate."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import MODEL_EVALUATED, MODEL_TRAINED
from gristmill.errors import ConfigError, MissingExtraError, SpecError
from gristmill.execution.inline import InlineExecutor
from gristmill.features.prepare import prepare
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.stages.base import STAGE_FAILED
from gristmill.training.bundle import load_model
from gristmill.training.splits import split_for
from gristmill.training.train import train


@pytest.fixture(params=["inline", "local"])
async def services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={
            "home": str(tmp_path / "home"),
            "executor": {"backend": request.param, "workers": 2},
        }
    )
    async with open_services(settings) as opened:
        yield opened


def cancer_spec(folder: Path, **train: Any) -> dict[str, Any]:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_parquet(folder / "cancer.parquet", index=False)
    candidates = train.pop(
        "candidates",
        [
            {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 0.5}},
            {"name": "tree", "algorithm": "decision_tree", "params": {"max_depth": 3}},
        ],
    )
    return {
        "name": "cancer",
        "sources": {"cancer": {"format": "parquet", "path": str(folder / "cancer.parquet")}},
        "features": {
            "cancer_v1": {
                "from": ["cancer"],
                "label": "target",
                "steps": [{"standardize": {"columns": ["mean_radius"]}}],
            }
        },
        "split": {"strategy": "stratified", "test_size": 0.3, "seed": 7},
        "train": {"candidates": candidates, **train},
        "evaluate": {"metric": "roc_auc", "evaluators": ["accuracy", "f1"]},
    }


async def test_a_run_trains_evaluates_and_ranks_the_candidates(
    services: Services, tmp_path: Path
) -> None:
    spec = parse_spec(cancer_spec(tmp_path))
    report = await run_pipeline(spec, services, timeout=240)
    assert report.run.status == "succeeded"
    (trained,) = report.of_type(MODEL_TRAINED)
    assert [c["status"] for c in trained.payload["candidates"]] == ["trained", "trained"]
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    board = evaluated.payload["leaderboard"]
    assert [row["rank"] for row in board] == [1, 2]
    assert board[0]["best"] and board[0]["value"] >= board[1]["value"] > 0.8
    assert evaluated.payload["gate"]["passed"]
    best = services.metadata.candidates.get_candidate(board[0]["candidate_id"])
    assert {"roc_auc", "accuracy", "f1"} <= set(best.metrics)
    assert best.versions["scikit-learn"] and best.finished_at and best.split_id
    images = evaluated.payload["images"][best.name]
    assert Path(images["roc"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest, fitted = load_model(services.feature_stores(), best)
    assert manifest["feature_pipeline"] and manifest["features"]
    assert set(fitted.classes) == {0, 1}


async def test_a_failing_candidate_does_not_sink_the_others_and_a_rerun_resumes(
    services: Services, tmp_path: Path
) -> None:
    candidates = [
        {"name": "good", "algorithm": "logistic_regression"},
        {
            "name": "bad",
            "algorithm": "logistic_regression",
            "params": {"solver": "lbfgs", "l1_ratio": 0.5},
        },
    ]
    spec = parse_spec(cancer_spec(tmp_path, candidates=candidates, retries=1))
    first = await run_pipeline(spec, services, timeout=240)
    (trained,) = first.of_type(MODEL_TRAINED)
    status = {c["name"]: c for c in trained.payload["candidates"]}
    assert status["good"]["status"] == "trained"
    assert status["bad"]["status"] == "failed" and "solver" in status["bad"]["error"]
    good = services.metadata.candidates.get_candidate(status["good"]["candidate_id"])

    # resume: the same feature set and split; the trained candidate is found, not retrained
    fs = services.metadata.feature_sets.get_feature_set(trained.payload["feature_set_id"])
    with InlineExecutor() as executor:
        again = train(spec, fs, services.feature_stores(), executor)
    assert {c.name: c.started_at for c in again.trained} == {"good": good.started_at}


async def test_tuning_runs_trials_and_keeps_the_best(services: Services, tmp_path: Path) -> None:
    candidates = [
        {
            "name": "tuned",
            "algorithm": "logistic_regression",
            "tune": {"trials": 4, "space": {"C": [0.01, 10.0, "log"]}},
        }
    ]
    spec = parse_spec(cancer_spec(tmp_path, candidates=candidates))
    report = await run_pipeline(spec, services, timeout=240)
    (trained,) = report.of_type(MODEL_TRAINED)
    candidate = services.metadata.candidates.get_candidate(
        trained.payload["candidates"][0]["candidate_id"]
    )
    assert len(candidate.tuning["trials"]) == 4
    assert candidate.params["C"] == candidate.tuning["best_params"]["C"]


async def test_a_custom_split_named_in_the_spec_decides_the_subsets(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_splits.py").write_text(
        "import numpy as np\n"
        "def every_fourth(table):\n"
        "    return np.where(np.arange(table.num_rows) % 4 == 0, 'test', 'train')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = parse_spec(
        {
            **cancer_spec(tmp_path),
            "split": {"strategy": "custom", "custom": "my_splits:every_fourth"},
        }
    )
    report = await run_pipeline(spec, services, timeout=240)
    assert report.run.status == "succeeded"
    (trained,) = report.of_type(MODEL_TRAINED)
    split = services.metadata.splits.get_split(trained.payload["split_id"])
    assert split.strategy == "custom"
    assert split.sizes == {"train": 426, "test": 143}  # 569 rows, every fourth one for test


async def test_an_unknown_algorithm_is_refused_before_the_run(
    services: Services, tmp_path: Path
) -> None:
    candidates = [{"name": "x", "algorithm": "random_forrest"}]
    spec = parse_spec(cancer_spec(tmp_path, candidates=candidates))
    with pytest.raises(
        ConfigError, match=r"train\.candidates\.x: no algorithm named 'random_forrest'"
    ):
        await run_pipeline(spec, services, timeout=240)
    assert services.metadata.runs.list_runs() == []


async def test_a_run_where_every_candidate_fails_is_not_a_success(
    services: Services, tmp_path: Path
) -> None:
    # a parameter's value only the estimator can judge (its name is checked before the run)
    candidates = [{"name": "x", "algorithm": "logistic_regression", "params": {"C": -1.0}}]
    spec = parse_spec(cancer_spec(tmp_path, candidates=candidates))
    report = await run_pipeline(spec, services, timeout=240)
    assert report.run.status == "partial"
    assert report.of_type(MODEL_TRAINED) == []
    (failure,) = report.of_type(STAGE_FAILED)
    assert failure.payload["stage"] == "training"
    assert "every candidate failed" in failure.payload["error"]
    (candidate,) = services.metadata.candidates.list_candidates()
    assert candidate.status == "failed" and "'C'" in (candidate.error or "")


async def test_a_search_space_typo_is_refused_before_the_run(
    services: Services, tmp_path: Path
) -> None:
    candidates = [
        {"name": "good", "algorithm": "logistic_regression"},
        {
            "name": "typo",
            "algorithm": "decision_tree",
            "tune": {"trials": 3, "space": {"max_dept": [2, 5]}},
        },
    ]
    spec = parse_spec(cancer_spec(tmp_path, candidates=candidates))
    with pytest.raises(
        ConfigError, match=r"train\.candidates\[1\]\.tune\.space\.max_dept"
    ) as raised:
        await run_pipeline(spec, services, timeout=240)
    assert "did you mean 'max_depth'" in str(raised.value)  # the suggestion
    assert services.metadata.candidates.list_candidates() == []  # nothing ran


async def test_an_optional_library_not_installed_is_refused_before_the_run(
    services: Services, tmp_path: Path
) -> None:
    if importlib.util.find_spec("lightgbm") is not None:
        pytest.skip("lightgbm is installed here")
    candidates = [{"name": "gbm", "algorithm": "lightgbm"}]
    spec = parse_spec(cancer_spec(tmp_path, candidates=candidates))
    with pytest.raises(MissingExtraError, match=r"train\.candidates\.gbm: .*pip install lightgbm"):
        await run_pipeline(spec, services, timeout=240)
    assert services.metadata.runs.list_runs() == []


async def test_metrics_are_checked_before_training(services: Services, tmp_path: Path) -> None:
    spec = parse_spec({**cancer_spec(tmp_path), "evaluate": {"metric": "rmsee"}})
    with pytest.raises(ConfigError, match=r"no metric named 'rmsee' \(did you mean 'rmse'\?\)"):
        await run_pipeline(spec, services, timeout=240)
    # a known metric of another task: refused once the task is known, before any candidate
    spec = parse_spec({**cancer_spec(tmp_path), "evaluate": {"metric": "rmse"}})
    report = await run_pipeline(spec, services, timeout=240)
    (failure,) = report.of_type(STAGE_FAILED)
    assert "rmse" in failure.payload["error"] and "classification" in failure.payload["error"]
    assert "inferred: integer label 'target'" in failure.payload["error"]
    assert "set train.task to override" in failure.payload["error"]
    assert services.metadata.candidates.list_candidates() == []


async def test_candidates_are_recorded_as_they_finish(services: Services, tmp_path: Path) -> None:
    if services.settings.executor.backend == "inline":
        pytest.skip("inline runs candidates one after another, in spec order")
    candidates = [
        {"name": "slow", "algorithm": "random_forest", "params": {"n_estimators": 400}},
        {"name": "fast", "algorithm": "logistic_regression"},
    ]
    spec = parse_spec(cancer_spec(tmp_path, candidates=candidates))
    await run_pipeline(spec.model_copy(update={"train": None}), services, timeout=240)
    # that run trained nothing, so it fitted cancer_v1 on all its rows; prepare the set
    # training uses, fitted on its training rows only
    (batch,) = services.metadata.batches.list_batches(source="cancer")
    stores = services.feature_stores()
    section = spec.features["cancer_v1"]  # type: ignore[index]
    fit_for = split_for(spec, "cancer_v1", stores)
    fs = prepare("cancer_v1", section, {"cancer": batch}, stores, split=fit_for).feature_set
    assert fs is not None
    order: list[str] = []
    result = train(
        spec,
        fs,
        services.feature_stores(),
        services.executor(),
        on_candidate=lambda c: order.append(c.name),
    )
    assert order == ["fast", "slow"]
    assert [c.name for c in result.candidates] == ["slow", "fast"]  # results keep spec order
    fast = next(c for c in result.candidates if c.name == "fast")
    assert fast.finished_at is not None and fast.finished_at - fast.started_at < timedelta(
        seconds=5
    )


async def test_a_model_that_cannot_be_scored_does_not_hide_the_others(
    services: Services, tmp_path: Path
) -> None:
    frame = load_wine(as_frame=True).data
    frame.to_parquet(tmp_path / "wine.parquet", index=False)
    spec = parse_spec(
        {
            "name": "wine",
            "sources": {"wine": {"format": "parquet", "path": str(tmp_path / "wine.parquet")}},
            "features": {"wine_v1": {"from": ["wine"]}},
            "train": {
                "candidates": [
                    {"name": "kmeans", "algorithm": "kmeans", "params": {"n_clusters": 3}},
                    {"name": "agglo", "algorithm": "sklearn.cluster:AgglomerativeClustering"},
                ]
            },
            "evaluate": {"metric": "silhouette"},
        }
    )
    report = await run_pipeline(spec, services, timeout=240)
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    assert [row["candidate"] for row in evaluated.payload["leaderboard"]] == ["kmeans"]
    board = services.metadata.reports.get_report(evaluated.payload["report"])
    (failed,) = board.body["failed"]
    assert failed["candidate"] == "agglo" and failed["error"].startswith("evaluation: ")


def test_duplicate_candidate_names_and_unknown_training_set_are_spec_errors(
    tmp_path: Path,
) -> None:
    twice = [{"name": "a", "algorithm": "logistic_regression"}] * 2
    with pytest.raises(SpecError, match="repeated: a"):
        parse_spec(cancer_spec(tmp_path, candidates=twice))
    with pytest.raises(SpecError, match=r"train\.feature_set: names 'nope'"):
        parse_spec(cancer_spec(tmp_path, feature_set="nope"))
