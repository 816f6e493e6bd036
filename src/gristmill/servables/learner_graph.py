"""The learner as ONNX (skl2onnx, or onnxmltools for LightGBM/XGBoost), joined to the
feature graph so that raw columns go in and predictions come out of one graph.

Tree ensembles take ``float32`` features: scikit-learn casts a tree's input to float32
itself, so the graph compares the same numbers with the same thresholds. Every other
learner takes the pipeline's doubles as they are. The learner's graph is brought to the
feature graph's opset with ONNX's version converter; its names are prefixed ``learner/``.

Outputs of the joined graph, in order: the value (class, number or cluster id) and, for a
classifier that has them, the class probabilities (``[rows, classes]``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import compose, helper, version_converter

from gristmill.learners import FittedLearner
from gristmill.learners.estimators import FittedEstimator
from gristmill.servables.graph import (
    ML_OPSET,
    OPSET,
    GraphBuilder,
    NotConvertible,
    pruned,
)
from gristmill.servables.packed import PACKED_COLUMNS

FLOAT32_LEARNERS = (
    "DecisionTree", "ExtraTree", "RandomForest", "ExtraTrees", "GradientBoosting",
    "HistGradientBoosting", "LGBM", "XGB",
)  # fmt: skip
PREFIX = "learner/"
_FLOAT, _DOUBLE = 1, 11


@dataclass(frozen=True)
class LearnerGraph:
    """A learner's ONNX model over a ``[rows, features]`` input; its output names in order."""

    model: onnx.ModelProto
    float32: bool
    outputs: tuple[str, ...]


def learner_graph(fitted: FittedLearner, width: int) -> LearnerGraph:
    """The ONNX form of ``fitted`` for ``width`` features; ``NotConvertible`` says why not."""
    if not isinstance(fitted, FittedEstimator):
        raise NotConvertible(
            f"learner {fitted.algorithm!r} ({type(fitted).__name__}) has no ONNX form"
        )
    estimator = fitted.estimator
    kind = type(estimator).__name__
    float32 = kind.startswith(FLOAT32_LEARNERS)
    model = _convert(estimator, width, float32)
    names = [o.name for o in model.graph.output]
    wanted = ["label", "probabilities"] if fitted.task == "classification" else names[:1]
    if fitted.task == "classification" and "proba" not in fitted.capabilities:
        wanted = ["label"]
    if fitted.task == "regression":
        wanted = ["variable"] if "variable" in names else names[:1]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise NotConvertible(f"the ONNX form of {kind} has no output {missing[0]!r}")
    _missing_directions(model, estimator)
    return LearnerGraph(_upgraded(model, kind), float32, tuple(wanted))


def _missing_directions(model: onnx.ModelProto, estimator: Any) -> None:
    """Send a missing value down the branch scikit-learn's tree sends it (``missing_go_to_
    left``: learned, or the larger child when training saw none), which skl2onnx leaves out
    for its single trees, forests and gradient boosting (the parity check proves the map)."""
    trees = _trees(estimator)
    if trees is None:
        return
    for node in model.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        attributes = {a.name: a for a in node.attribute}
        tree_ids = helper.get_attribute_value(attributes["nodes_treeids"])
        node_ids = helper.get_attribute_value(attributes["nodes_nodeids"])
        if not tree_ids or max(tree_ids) >= len(trees):
            return
        flags = [
            int(trees[t].missing_go_to_left[n]) for t, n in zip(tree_ids, node_ids, strict=True)
        ]
        name = "nodes_missing_value_tracks_true"
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(name, flags)])


def _trees(estimator: Any) -> list[Any] | None:
    """The fitted ``tree_`` objects of a scikit-learn tree model, in skl2onnx's tree order."""
    kind = type(estimator).__name__
    if kind.startswith(("DecisionTree", "ExtraTree")) and hasattr(estimator, "tree_"):
        return [estimator.tree_]
    members = getattr(estimator, "estimators_", None)
    if members is None or not kind.startswith(("RandomForest", "ExtraTrees", "GradientBoost")):
        return None
    trees = [getattr(m, "tree_", None) for m in np.ravel(np.asarray(members, dtype=object))]
    if not all(t is not None and hasattr(t, "missing_go_to_left") for t in trees):
        return None
    return trees


def _convert(estimator: Any, width: int, float32: bool) -> onnx.ModelProto:
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    except ImportError as exc:
        raise NotConvertible("skl2onnx is not installed (pip install 'gristmill[serve]')") from exc
    _register_boosters()
    tensor = FloatTensorType if float32 else DoubleTensorType
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model: onnx.ModelProto = convert_sklearn(
                estimator,
                initial_types=[("features", tensor([None, width]))],
                target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
                options=options,
            )
    except Exception as exc:  # skl2onnx raises many kinds for what it cannot convert
        raise NotConvertible(
            f"skl2onnx cannot convert {type(estimator).__name__}: {_first_line(exc)}"
        ) from exc
    return model


def _upgraded(model: onnx.ModelProto, kind: str) -> onnx.ModelProto:
    """``model`` declaring one version per domain, ``ai.onnx`` at ``OPSET``."""
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    if versions.get("", 0) >= OPSET:
        return model
    try:
        upgraded: onnx.ModelProto = version_converter.convert_version(model, OPSET)
    except Exception as exc:  # the converter raises RuntimeError and others
        raise NotConvertible(f"the ONNX form of {kind} cannot be raised to opset {OPSET}") from exc
    return upgraded


def _register_boosters() -> None:
    """Teach skl2onnx LightGBM's and XGBoost's converters (onnxmltools), when installed."""
    try:
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )
    except ImportError:
        return
    pairs: list[tuple[str, str, Any]] = [
        ("lightgbm", "LGBMClassifier", convert_lightgbm),
        ("lightgbm", "LGBMRegressor", convert_lightgbm),
        ("xgboost", "XGBClassifier", convert_xgboost),
        ("xgboost", "XGBRegressor", convert_xgboost),
    ]
    for module, name, converter in pairs:
        try:
            kind = getattr(__import__(module), name)
        except ImportError:
            continue
        shapes = (
            calculate_linear_classifier_output_shapes
            if name.endswith("Classifier")
            else calculate_linear_regressor_output_shapes
        )
        options = {"nocl": [True, False], "zipmap": [True, False]} if "Class" in name else None
        update_registered_converter(kind, f"Gristmill{name}", shapes, converter, options=options)


def joined(b: GraphBuilder, features: str, learner: LearnerGraph) -> onnx.ModelProto:
    """One model: ``b``'s nodes make ``features`` (``[rows, n]`` doubles), the learner follows."""
    prefixed = compose.add_prefix(learner.model, PREFIX)
    graph = prefixed.graph
    (entry,) = [i.name for i in graph.input]
    cast = helper.make_node("Cast", [features], [entry], to=_FLOAT if learner.float32 else _DOUBLE)
    outputs = [PREFIX + name for name in learner.outputs]
    nodes, constants, read = pruned([*b.nodes, cast, *graph.node], b.initializers, outputs)
    inputs = [v for name, v in b.inputs.items() if name in read]
    value_infos = {o.name: o for o in graph.output}
    body = helper.make_graph(
        nodes,
        "gristmill",
        inputs,
        [value_infos[o] for o in outputs],
        [*constants, *graph.initializer],
    )
    versions = {o.domain: o.version for o in prefixed.opset_import}
    versions[""] = max(versions.get("", 0), OPSET)
    model = helper.make_model(
        body, opset_imports=[helper.make_opsetid(d, v) for d, v in versions.items()]
    )
    model.ir_version = max(min(model.ir_version, 10), prefixed.ir_version)
    if b.packed:
        helper.set_model_props(model, {PACKED_COLUMNS: json.dumps(list(b.packed))})
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
