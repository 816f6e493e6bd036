"""A small ONNX servable made in memory, for tests of what feeds a servable and reads it.

``numeric_servable`` fits the penguins' four measurements (imputed, standardized) to their
species with a logistic regression and compiles it as a version would be: one graph taking
the numbers as one tensor, and the learner's own graph.
"""

from __future__ import annotations

from typing import Any

from gristmill.features.pipeline import FeaturePipeline
from gristmill.features.steps import make_step
from gristmill.learners.registry import make_learner
from gristmill.servables.onnx_graphs import onnx_graphs
from gristmill.servables.onnx_servable import OnnxServable
from gristmill.servables.port import ServableManifest
from gristmill.servables.schema import columns, raw_types
from gristmill.training.bundle import Scorer

MEASUREMENTS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def numeric_servable(threads: int = 1) -> OnnxServable:
    """The servable (see the module docstring); ``threads`` as ``OnnxServable`` takes it."""
    from palmerpenguins import load_penguins

    frame = load_penguins().dropna(subset=["species"]).reset_index(drop=True)
    steps: list[dict[str, dict[str, Any]]] = [
        {"impute": {"columns": MEASUREMENTS, "strategy": "median"}},
        {"standardize": {"columns": MEASUREMENTS}},
        {"drop": {"columns": ["island", "sex"]}},
    ]
    pipeline = FeaturePipeline(
        tuple(make_step(*next(iter(s.items()))) for s in steps), label="species"
    ).fit(frame)
    features = pipeline.transform(frame)
    learner = make_learner("logistic_regression", {"max_iter": 2000}).fit(
        features[pipeline.feature_names], frame["species"].loc[features.index]
    )
    scorer = Scorer(learner, pipeline, pipeline.feature_names)
    return servable_of(scorer, threads=threads)


def servable_of(scorer: Scorer, *, threads: int = 1) -> OnnxServable:
    """``scorer`` compiled to an ONNX servable of ``m``/1 (no store, no parity check)."""
    types = raw_types(scorer)
    graphs = onnx_graphs(scorer, types)
    manifest = ServableManifest(
        model="m",
        version=1,
        kind="onnx",
        reason="",
        digest="",
        bundle="",
        pipeline=None,
        task="classification",
        output="probabilities",
        inputs=columns({n: types[n] for n in graphs.inputs}, {}),
        classes=tuple(scorer.classes),
        features=columns(dict.fromkeys(scorer.feature_names, "float64"), {}),
    )
    full, alone = graphs.full.SerializeToString(), graphs.learner.SerializeToString()
    return OnnxServable(manifest, full, alone, threads=threads)
