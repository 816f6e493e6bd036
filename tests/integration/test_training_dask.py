"""The learning loop on the dask executor: ingest → prepare → split → train → evaluate.

The run goes through the configured bus and stores like any other; only the ``executor``
settings say ``dask``: either the address of a ``dask.distributed`` LocalCluster the test
starts (as on a real cluster, a candidate's data and model travel to worker processes over
the network), or no address, so the executor starts its own LocalCluster.
"""

# distributed annotates only part of its API (as in gristmill.backends.dask.executor).
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster, get_task_stream
from sklearn.datasets import load_breast_cancer

from gristmill.backends.dask.executor import DaskExecutor
from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import MODEL_EVALUATED, MODEL_TRAINED
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.training.bundle import load_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A scheduler with two single-threaded worker processes and no dashboard."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as started:
        yield started


@pytest.fixture(params=["scheduler", "own-cluster"])
async def services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    executor: dict[str, Any]
    if request.param == "scheduler":
        cluster: LocalCluster = request.getfixturevalue("cluster")
        executor = {"backend": "dask", "address": cluster.scheduler_address}
    else:
        executor = {"backend": "dask", "workers": 2}
    settings = load_settings(overrides={"home": str(tmp_path / "home"), "executor": executor})
    async with open_services(settings) as opened:
        yield opened


def cancer_spec(folder: Path) -> dict[str, Any]:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_parquet(folder / "cancer.parquet", index=False)
    return {
        "name": "cancer",
        "sources": {"cancer": {"format": "parquet", "path": str(folder / "cancer.parquet")}},
        "features": {
            "cancer_v1": {
                "from": ["cancer"],
                "label": "target",
                "steps": [{"standardize": {"columns": ["mean_radius", "mean_texture"]}}],
            }
        },
        "split": {"strategy": "stratified", "test_size": 0.3, "seed": 7},
        "train": {
            "candidates": [
                {
                    "name": "logreg",
                    "algorithm": "logistic_regression",
                    "tune": {"trials": 2, "space": {"C": [0.05, 5.0, "log"]}},
                },
                {"name": "tree", "algorithm": "decision_tree", "params": {"max_depth": 3}},
            ]
        },
        "evaluate": {"metric": "roc_auc", "evaluators": ["accuracy", "f1"]},
    }


async def test_a_run_on_dask_trains_on_the_cluster_and_ranks_the_candidates(
    services: Services, tmp_path: Path
) -> None:
    spec = parse_spec(cancer_spec(tmp_path))
    executor = services.executor()  # opened now (it would be on first use) to watch its cluster
    assert isinstance(executor, DaskExecutor) and executor.capabilities.separate_processes
    address = executor.scheduler_address
    with Client(address, set_as_default=False) as client, get_task_stream(client) as stream:
        report = await run_pipeline(spec, services, timeout=120)
    assert report.run.status == "succeeded", report.events

    # the candidates and the tuning trials ran on the cluster's workers, not in this process
    ran = [task["key"].rsplit("-", 1)[0] for task in stream.data]
    assert ran.count("fit_candidate") == 2 and ran.count("score_trial") == 2

    (trained,) = report.of_type(MODEL_TRAINED)
    assert trained.payload["split_id"].startswith("sp_")
    assert [(c["name"], c["status"]) for c in trained.payload["candidates"]] == [
        ("logreg", "trained"),
        ("tree", "trained"),
    ]
    stores = services.feature_stores()
    for item in trained.payload["candidates"]:
        candidate = services.metadata.candidates.get_candidate(item["candidate_id"])
        assert candidate.run_id == report.run.run_id and candidate.attempts == 1
        assert candidate.split_id == trained.payload["split_id"]
        manifest, fitted = load_model(stores, candidate)
        assert manifest["feature_pipeline"] and manifest["features"]
        assert set(fitted.classes) == {0, 1}
    tuned = services.metadata.candidates.get_candidate(
        trained.payload["candidates"][0]["candidate_id"]
    )
    assert (
        len(tuned.tuning["trials"]) == 2 and tuned.params["C"] == tuned.tuning["best_params"]["C"]
    )

    (evaluated,) = report.of_type(MODEL_EVALUATED)
    board = evaluated.payload["leaderboard"]
    assert sorted(row["candidate"] for row in board) == ["logreg", "tree"]
    assert [row["rank"] for row in board] == [1, 2] and board[0]["value"] >= board[1]["value"] > 0.8
    assert [row["best"] for row in board] == [True, False]
    assert evaluated.payload["best"] == board[0]["candidate_id"]
    assert evaluated.payload["gate"]["passed"]
    best = services.metadata.candidates.get_candidate(board[0]["candidate_id"])
    assert {"roc_auc", "accuracy", "f1"} <= set(best.metrics)
    roc = Path(evaluated.payload["images"][best.name]["roc"])
    assert roc.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leaderboard = services.metadata.reports.get_report(evaluated.payload["report"])
    assert leaderboard.kind == "leaderboard" and leaderboard.status == "passed"


@pytest.mark.parametrize(("root", "told"), [(logging.WARNING, False), (logging.INFO, True)])
def test_an_own_cluster_logs_its_info_only_when_asked(
    root: int, told: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(root)  # the root logger as the CLI sets it: WARNING, or INFO with -v
    cluster_logger = logging.getLogger("distributed")
    before = cluster_logger.level
    with DaskExecutor(workers=1) as executor:
        assert executor.submit(sum, [1, 2]).result() == 3
    chatter = [
        r
        for r in caplog.records
        if r.name.startswith("distributed") and r.levelno < logging.WARNING
    ]
    assert bool(chatter) is told
    assert cluster_logger.level == before  # put back on close
