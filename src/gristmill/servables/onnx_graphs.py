"""A scorer (fitted feature pipeline + learner) as ONNX: the joined graph and the learner's.

The steps are planned backwards from the learner's features, so each step builds only the
columns some kept feature needs, and the joined graph's inputs are exactly the raw columns
those features are computed from (feature selection narrows the inputs too). The second
graph is the learner alone over one input per feature, for vectors read from the online
store. Either raises ``NotConvertible`` with the reason when some part has no ONNX form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import onnx

from gristmill.features.pipeline import FittedFeaturePipeline
from gristmill.servables.graph import Col, GraphBuilder, NotConvertible
from gristmill.servables.learner_graph import PREFIX, LearnerGraph, joined, learner_graph
from gristmill.servables.port import ColumnType
from gristmill.servables.step_graphs import Env, build, produces
from gristmill.training.bundle import Scorer

RESERVED = ("gm/", PREFIX)


@dataclass(frozen=True)
class OnnxGraphs:
    """The joined graph, the learner's own graph, and what went into them."""

    full: onnx.ModelProto
    learner: onnx.ModelProto
    inputs: tuple[str, ...]
    learner_graph: LearnerGraph
    steps: tuple[str, ...]
    learner_kind: str

    @property
    def float32(self) -> bool:
        return self.learner_graph.float32


def onnx_graphs(scorer: Scorer, types: Mapping[str, ColumnType]) -> OnnxGraphs:
    """Both graphs of ``scorer``; ``types`` are its raw inputs' types.

    The joined graph is built once with one input per raw column, which tells which columns
    its features need; when those are all numbers (and more than one), it is built again
    taking them as one tensor (``GraphBuilder.input_block``), which a call feeds at once.
    The learner's own graph takes its features as one tensor."""
    features = list(scorer.feature_names)
    learner = learner_graph(scorer.learner, len(features))
    for name in types:
        if name.startswith(RESERVED):
            raise NotConvertible(f"column {name!r} starts like a name the graph uses")
    full = _joined_graph(scorer, types, learner, features, packed=())
    needed = [i.name for i in full.graph.input]
    if len(needed) > 1 and all(types[name] != "string" for name in needed):
        full = _joined_graph(scorer, types, learner, features, packed=tuple(needed))
    own = GraphBuilder()
    learner_only = joined(own, own.block(own.input_block(features)), learner)
    estimator = type(getattr(scorer.learner, "estimator", scorer.learner)).__name__
    steps = () if scorer.pipeline is None else scorer.pipeline.steps
    names = tuple(s.display_name for s in steps)
    return OnnxGraphs(full, learner_only, tuple(needed), learner, names, estimator)


def _joined_graph(
    scorer: Scorer,
    types: Mapping[str, ColumnType],
    learner: LearnerGraph,
    features: list[str],
    *,
    packed: tuple[str, ...],
) -> onnx.ModelProto:
    """The pipeline and the learner as one graph; the columns ``packed`` as one input."""
    b = GraphBuilder()
    env: Env = {}
    if packed:
        env.update(zip(packed, b.input_block(packed), strict=True))
    for name, kind in types.items():
        if kind != "datetime" and name not in env:
            env[name] = b.input(name, "string" if kind == "string" else "number")
    pipeline = scorer.pipeline
    steps = () if pipeline is None else pipeline.steps
    try:
        for step, wanted in zip(steps, _plan(pipeline, features), strict=True):
            build(step, env, b, wanted)
        cols = [env[f] for f in features]
    except KeyError as exc:
        raise NotConvertible(f"column {exc.args[0]!r} cannot be an ONNX input") from exc
    _numeric(cols, features)
    return joined(b, b.block(cols), learner)


def read_columns(scorer: Scorer) -> frozenset[str]:
    """The raw columns ``scorer``'s kept features are computed from, planned backwards
    through its steps as the joined graph is (whatever the learner): the inputs a native
    servable of the same pipeline asks for. ``NotConvertible`` when a step cannot say what
    it reads (a custom step, a filter: anything may be read)."""
    needed = set(scorer.feature_names)
    pipeline = scorer.pipeline
    for step in () if pipeline is None else reversed(pipeline.steps):
        made = produces(step)
        wanted = [column for column in made if column in needed]
        needed = (needed - set(made)) | {source for column in wanted for source in made[column]}
    return frozenset(needed)


def _plan(pipeline: FittedFeaturePipeline | None, features: list[str]) -> list[list[str]]:
    """Per step, the outputs of it some later step or kept feature needs."""
    if pipeline is None:
        return []
    needed = set(features)
    plan: list[list[str]] = []
    for step in reversed(pipeline.steps):
        made = produces(step)
        wanted = [column for column in made if column in needed]
        needed = (needed - set(made)) | {source for column in wanted for source in made[column]}
        plan.append(wanted)
    plan.reverse()
    return plan


def _numeric(cols: list[Col], features: list[str]) -> None:
    text = [f for f, col in zip(features, cols, strict=True) if col.kind != "number"]
    if text:
        raise NotConvertible(f"feature {text[0]!r} is text; the learner takes it as is")
