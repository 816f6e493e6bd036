"""The gate against the registry: train, promote the best, train again and let the gate judge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from gristmill.cli.app import app
from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import MODEL_EVALUATED
from gristmill.errors import ConfigError, NotFoundError
from gristmill.features.rows import ROW_ID
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.servables.storage import SERVABLE_KIND
from gristmill.stores.lineage import lineage_graph
from gristmill.stores.models import Candidate
from gristmill.testing.metadata_records import make_candidate
from gristmill.training.bundle import load_scorer
from gristmill.training.gate import promote
from gristmill.training.splits import read_membership

STUMP = {"name": "stump", "algorithm": "decision_tree", "params": {"max_depth": 1}}
LOGREG = {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 0.5}}


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={"home": str(tmp_path / "home"), "executor": {"backend": "inline"}}
    )
    async with open_services(settings) as opened:
        yield opened


def cancer_spec(
    folder: Path,
    candidates: list[dict[str, Any]],
    *,
    deploy: dict[str, Any] | None = None,
    drop: Sequence[str] = (),
    seed: int = 7,
    task: str | None = None,
    metric: str = "roc_auc",
) -> dict[str, Any]:
    data = folder / "cancer.parquet"
    if not data.exists():
        frame = load_breast_cancer(as_frame=True).frame
        frame.columns = [c.replace(" ", "_") for c in frame.columns]
        frame.to_parquet(data, index=False)
    steps: list[dict[str, Any]] = [{"standardize": {"columns": ["mean_radius"]}}]
    if drop:
        steps.append({"drop": {"columns": list(drop)}})
    return {
        "name": "cancer",
        "sources": {"cancer": {"format": "parquet", "path": str(data)}},
        "features": {"cancer_v1": {"from": ["cancer"], "label": "target", "steps": steps}},
        "split": {"strategy": "stratified", "test_size": 0.3, "seed": seed},
        "train": {"candidates": candidates, **({"task": task} if task else {})},
        "evaluate": {"metric": metric},
        # promotion is by hand here: the deployment stage must not move the champion
        "deploy": {"policy": "manual", **(deploy or {})},
    }


async def evaluate(
    services: Services, folder: Path, candidates: list[dict[str, Any]], **options: Any
) -> tuple[Candidate, dict[str, Any]]:
    """Run the pipeline; the best candidate and the gate's decision as the report keeps it."""
    spec = parse_spec(cancer_spec(folder, candidates, **options))
    report = await run_pipeline(spec, services, timeout=240)
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    leaderboard = services.metadata.reports.get_report(evaluated.payload["report"])
    decision: dict[str, Any] = leaderboard.body["gate"]
    assert decision == evaluated.payload["gate"]
    assert leaderboard.status == ("passed" if decision["passed"] else "failed")
    best = services.metadata.candidates.get_candidate(evaluated.payload["best"])
    return best, decision


async def test_the_gate_holds_new_candidates_against_the_champion(
    services: Services, tmp_path: Path
) -> None:
    stump, first = await evaluate(services, tmp_path, [STUMP])
    assert first["passed"] and first["production"] is None
    assert "no model 'cancer' in production yet" in first["reason"]

    promoted = promote(services.metadata, stump.candidate_id, "cancer", actor="ann")
    assert (promoted.version.version, promoted.registered, promoted.replaced) == (1, True, None)
    kinds = {e.parent_kind for e in lineage_graph(services.metadata.lineage, "cancer/1").ancestors}
    assert {"candidate", "split", "feature_set", "raw_batch"} <= kinds

    # a far better candidate, but not by the margin asked for
    better, failed = await evaluate(services, tmp_path, [LOGREG], deploy={"min_improvement": 0.5})
    assert better.name == "logreg" and not failed["passed"]
    champion = failed["production"]
    assert (champion["version"], champion["candidate_id"]) == (1, stump.candidate_id)
    assert champion["comparison"] == "rescored"  # same split: the very same test rows
    assert champion["value"] == pytest.approx(stump.metrics["roc_auc"])
    assert failed["value"] == better.metrics["roc_auc"]
    assert failed["improvement"] == pytest.approx(better.metrics["roc_auc"] - champion["value"])
    assert failed["min_improvement"] == 0.5
    assert "below min_improvement 0.5" in failed["reason"]

    # the same candidate against margins it meets
    margins = {"min_improvement": 0.02, "min_relative_improvement": 0.02}
    again, passed = await evaluate(services, tmp_path, [LOGREG], deploy=margins)
    assert again.candidate_id == better.candidate_id
    assert passed["passed"], passed["reason"]
    assert passed["relative_improvement"] > 0.02
    assert passed["reason"].startswith("logreg beats cancer version 1 (champion) on roc_auc")

    promoted = promote(services.metadata, better.candidate_id, "cancer")
    assert (
        promoted.version.version == 2
        and promoted.replaced == services.metadata.registry.get_version("cancer", 1)
    )
    assert services.metadata.registry.find_alias("cancer", "previous") == promoted.replaced
    _, same = await evaluate(services, tmp_path, [LOGREG], deploy=margins)
    assert not same["passed"]
    assert "logreg is cancer version 2 (champion) already" in same["reason"]
    actions = [e.action for e in services.metadata.audit.list_entries(subject="model:cancer")]
    assert actions.count("model.registered") == 2


async def test_a_champion_made_by_another_pipeline_is_rescored_through_its_own_bundle(
    services: Services, tmp_path: Path
) -> None:
    stump, _ = await evaluate(services, tmp_path, [STUMP])
    promote(services.metadata, stump.candidate_id, "cancer")
    # other steps (so another fitted pipeline, other feature columns) and another split
    _, decision = await evaluate(services, tmp_path, [LOGREG], drop=["mean_texture"], seed=8)
    champion = decision["production"]
    assert champion["comparison"] == "rescored", champion["note"]
    assert "the champion through its own fitted pipeline and model" in decision["reason"]

    # by hand: the raw rows of the new split's test subset, scored by the champion's bundle
    best = services.metadata.candidates.get_candidate(decision["candidate_id"])
    fs = services.metadata.feature_sets.get_feature_set(best.feature_set_id)
    split = services.metadata.splits.get_split(best.split_id)
    assert best.split_id != stump.split_id
    membership = read_membership(split, services.feature_stores())
    listed = membership.to_pandas()
    test_keys = set(listed.loc[listed["subset"] == "test", ROW_ID])
    (batch,) = fs.inputs
    raw = services.raw.read(batch).to_pandas()
    raw = raw[[f"{batch}:{i}" in test_keys for i in range(len(raw))]]
    assert len(raw) == split.sizes["test"]
    scorer = load_scorer(services.feature_stores(), stump)
    by_hand = roc_auc_score(raw["target"], scorer.predict_proba(raw)[1])
    assert champion["value"] == pytest.approx(by_hand)
    assert champion["value"] != pytest.approx(stump.metrics["roc_auc"])  # not its own rows


async def test_a_champion_that_cannot_be_rescored_is_compared_by_its_recorded_value(
    services: Services, tmp_path: Path
) -> None:
    stump, _ = await evaluate(services, tmp_path, [STUMP])
    promote(services.metadata, stump.candidate_id, "cancer")
    linear = {"name": "linear", "algorithm": "linear_regression"}
    _, decision = await evaluate(services, tmp_path, [linear], task="regression", metric="rmse")
    champion = decision["production"]
    assert champion["comparison"] == "recorded"
    assert champion["note"] == "it is a classification model, this is a regression task"
    assert champion["value"] is None  # it has no recorded rmse either
    assert not decision["passed"]
    assert "has no rmse value to compare with (it is a classification model" in (decision["reason"])


async def test_deploy_model_names_the_registry_entry(services: Services, tmp_path: Path) -> None:
    stump, _ = await evaluate(services, tmp_path, [STUMP])
    promote(services.metadata, stump.candidate_id, "tumours")
    _, decision = await evaluate(services, tmp_path, [LOGREG])
    assert decision["model"] == "cancer" and decision["production"] is None
    _, decision = await evaluate(services, tmp_path, [LOGREG], deploy={"model": "tumours"})
    assert decision["model"] == "tumours" and decision["production"]["version"] == 1


async def test_promote_and_models_on_the_command_line(services: Services, tmp_path: Path) -> None:
    stump, _ = await evaluate(services, tmp_path, [STUMP])
    logreg, _ = await evaluate(services, tmp_path, [LOGREG])
    home = ["--home", str(services.settings.home)]
    runner = CliRunner()

    async def cli(args: list[str], **kwargs: Any) -> Result:
        # promote announces on the bus with asyncio.run: the CLI runs off this test's loop
        return await asyncio.to_thread(runner.invoke, app, args, **kwargs)

    first = await cli([*home, "promote", stump.candidate_id])
    assert first.exit_code == 0, first.output
    assert f"registered stump ({stump.candidate_id}) as cancer version 1" in first.output
    assert "cancer@champion → version 1" in first.output
    second = await cli([*home, "promote", logreg.candidate_id])
    assert "cancer@champion → version 2 (was version 1, which is now cancer@previous)" in (
        second.output
    )
    # compiled before the alias moved: a server polling in between never compiles it itself
    compiled = services.metadata.reports.list_reports(
        subject="cancer/2", kind=SERVABLE_KIND, limit=1
    )
    moved = {a.alias: a for a in services.metadata.registry.list_aliases("cancer")}["champion"]
    assert compiled and compiled[0].created_at <= moved.updated_at
    again = await cli([*home, "promote", logreg.candidate_id])
    assert f"logreg ({logreg.candidate_id}) is cancer version 2 already" in again.output
    assert "nothing moved" in again.output
    challenger = await cli([*home, "promote", stump.candidate_id, "--alias", "challenger"])
    assert "cancer@challenger → version 1" in challenger.output

    listing = await cli([*home, "models", "cancer"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output
    rows = [line for line in listing.output.splitlines() if "cancer" in line]
    assert "@champion" in rows[0] and "logreg" in rows[0]
    assert "@challenger @previous" in rows[1] and "stump" in rows[1]
    unknown = await cli([*home, "models", "nope"])
    assert isinstance(unknown.exception, NotFoundError)
    assert "no versions of model 'nope'" in str(unknown.exception)

    missing = await cli([*home, "promote", "mc_nope"])
    assert isinstance(missing.exception, NotFoundError)
    assert "mc_nope" in str(missing.exception)
    assert "gristmill ls candidates" in str(missing.exception)
    help_text = (await cli(["promote", "--help"])).output
    assert "gristmill promote mc_" in help_text and "gristmill ls candidates" in help_text


async def test_promote_refuses_what_cannot_serve(services: Services) -> None:
    failed = make_candidate("mc_failed", status="failed", error="boom")
    services.metadata.candidates.save_candidate(failed)
    with pytest.raises(ConfigError, match=r"mc_failed .*failed in training.*gristmill ls"):
        promote(services.metadata, "mc_failed", "cancer")
    with pytest.raises(NotFoundError, match="gristmill ls candidates"):
        promote(services.metadata, "mc_nope", "cancer")
    outside = make_candidate("mc_outside", artifact="sha256:x")
    services.metadata.candidates.save_candidate(outside)
    result = CliRunner().invoke(
        app, ["--home", str(services.settings.home), "promote", "mc_outside"]
    )
    assert isinstance(result.exception, ConfigError)
    assert "--model NAME" in str(result.exception)
    assert services.metadata.registry.list_versions() == []
