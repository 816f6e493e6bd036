"""Registered model versions made the real way, for tests of what serves them.

``train_and_register`` runs a small pipeline through every stage (ingestion, preparation,
split, training, evaluation) on the given services and registers each trained candidate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gristmill.config.settings import Settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import MODEL_EVALUATED
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.stores.models import ModelVersion
from gristmill.training.gate import promote


def write_csv(frame: pd.DataFrame, folder: Path, name: str) -> Path:
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


async def train_and_register(
    services: Services,
    csv: Path,
    *,
    model: str,
    section: dict[str, Any],
    candidates: list[dict[str, Any]],
    metric: str,
    split: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    sections: dict[str, Any] | None = None,
) -> dict[str, ModelVersion]:
    """Run ingestion → preparation → training → evaluation, then register every trained
    candidate as a version of ``<model>_<candidate name>`` (``@champion``); ``sections``
    are more top-level sections of the spec (``serve``, ``monitor``)."""
    spec = parse_spec(
        {
            "name": model,
            "sources": {model: {"format": "csv", "path": str(csv)}},
            "features": {f"{model}_v1": {"from": [model], **section}},
            "split": split or {"strategy": "random", "test_size": 0.3, "seed": 7},
            "train": {"candidates": candidates, **(train or {})},
            "evaluate": {"metric": metric},
            **(sections or {}),
        }
    )
    report = await run_pipeline(spec, services, timeout=280)
    if report.run.status != "succeeded" or not report.of_type(MODEL_EVALUATED):
        raise AssertionError(f"the pipeline did not train: {report.run.summary}")
    versions = {}
    for candidate in services.metadata.candidates.list_candidates(run_id=report.run.run_id):
        if candidate.status != "trained":
            raise AssertionError(f"candidate {candidate.name} failed: {candidate.error}")
        name = f"{model}_{candidate.name}"
        versions[candidate.name] = promote(services.metadata, candidate.candidate_id, name).version
    return versions


def columns_of(frame: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    """Request columns: one numpy array per column, as a client would send them."""
    return {name: frame[name].to_numpy() for name in names}


PENGUIN_NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
PENGUIN_SECTION = {
    "entity": "penguin_id",
    "label": "species",
    "steps": [
        {"impute": {"columns": PENGUIN_NUMBERS, "strategy": "median"}},
        {"impute": {"columns": ["sex"], "strategy": "most_frequent"}},
        {"one_hot": {"columns": ["island", "sex"]}},
        {"standardize": {"columns": PENGUIN_NUMBERS}},
        {"drop": {"columns": ["year"]}},
    ],
}


LOGREG = {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 0.5}}


def birds_spec(
    *,
    online: bool = False,
    drop_year: bool = True,
    candidates: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> str:
    """A pipeline spec (YAML) ``birds`` on ``penguins.csv`` beside it: the penguin feature
    set (``online`` adds an online view; ``drop_year`` drops the year column), a stratified
    split, ``candidates`` (a logistic regression by default), accuracy; ``sections`` adds
    or replaces top-level sections (``score={...}``, ``deploy={...}``)."""
    import yaml

    steps = PENGUIN_SECTION["steps"] if drop_year else PENGUIN_SECTION["steps"][:-1]
    feature_set = {"from": ["penguins"], "entity": "penguin_id", "label": "species"}
    spec = {
        "name": "birds",
        "sources": {"penguins": {"format": "csv", "path": "penguins.csv"}},
        "features": {
            "penguins_v1": {**feature_set, **({"online": {}} if online else {}), "steps": steps}
        },
        "split": {"strategy": "stratified", "test_size": 0.3, "seed": 7},
        "train": {"candidates": candidates or [LOGREG]},
        "evaluate": {"metric": "accuracy"},
        **sections,
    }
    return str(yaml.safe_dump(spec, sort_keys=False))


def penguins() -> pd.DataFrame:
    """The Palmer penguins with a `penguin_id` entity column (p0000 …)."""
    from palmerpenguins import load_penguins

    frame = load_penguins()
    frame.insert(0, "penguin_id", [f"p{i:04d}" for i in range(len(frame))])
    return frame


async def train_penguins(settings: Settings, folder: Path) -> ModelVersion:
    """``penguins_logreg/1``, registered the real way (every stage)."""
    async with open_services(settings) as services:
        made = await train_and_register(
            services,
            write_csv(penguins(), folder, "penguins"),
            model="penguins",
            section=PENGUIN_SECTION,
            candidates=[{"name": "logreg", "algorithm": "logistic_regression"}],
            metric="accuracy",
            split={"strategy": "stratified", "test_size": 0.3, "seed": 7},
        )
    return made["logreg"]
