"""ONNX forms of gristmill's built-in feature steps, built from their fitted statistics.

Each converter says which columns a step makes from which (``produces``), so the compiler
can build only what the learner's features need (feature selection narrows the raw inputs
too), and ``build``s the wanted outputs as graph nodes over blocks of columns. A step with
no ONNX form (a filter changes the row count; date parts, text statistics and tf-idf need
text or date functions ONNX lacks; lags, rolling windows and gap filling read other rows;
a custom step is code) raises ``NotConvertible`` naming
it, and so does an option whose behaviour the graph cannot reproduce (``handle_unknown:
error`` raises on a new category, which a graph cannot do; infrequent categories).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gristmill.features.steps import CustomStep, FeatureStep
from gristmill.servables.expression_graph import derive_build, derive_produces
from gristmill.servables.graph import MISSING_TEXT, Col, GraphBuilder, NotConvertible, split_cols

Env = dict[str, Col]
Produces = dict[str, list[str]]
"""Output column → the input columns it is computed from."""

Builder = Callable[[FeatureStep, Env, GraphBuilder, list[str]], dict[str, Col]]

NO_FORM = {
    "filter": "it drops rows, which a graph that answers every row cannot do",
    "date_parts": "ONNX has no date parsing",
    "text_stats": "ONNX has no text statistics",
    "tfidf": "its tokenizer is not a standard ONNX operator",
    "fill_gaps": "it reads the rows around each row (and may add rows), which a graph that "
    "answers each row on its own cannot do",
    "lag": "it reads earlier rows, which a graph that answers each row on its own cannot do",
    "rolling": "it reads earlier rows, which a graph that answers each row on its own cannot do",
}


def produces(step: FeatureStep) -> Produces:
    """What ``step`` makes from what; ``NotConvertible`` when it has no ONNX form."""
    name = step.step_name
    if isinstance(step, CustomStep) or type(step).__module__.split(".")[0] != "gristmill":
        raise NotConvertible(f"step {step.display_name!r} is a custom step (code ONNX cannot run)")
    if name in NO_FORM:
        raise NotConvertible(f"step {name!r} has no ONNX form: {NO_FORM[name]}")
    if name == "drop":
        return {}
    if name == "derive":
        return derive_produces(step)
    if name == "one_hot":
        return {out: [col] for col, outs in _one_hot_names(step).items() for out in outs}
    if name in _BUILDERS:
        return {c: [c] for c in step.columns_}
    raise NotConvertible(f"step {name!r} has no ONNX form")


def build(step: FeatureStep, env: Env, b: GraphBuilder, wanted: list[str]) -> None:
    """Add the nodes making ``wanted`` (outputs of ``step``) and update ``env``."""
    if step.step_name == "drop":
        for column in step.columns:
            env.pop(column, None)
        return
    made: dict[str, Col] = {}
    if wanted and step.step_name == "derive":
        made = derive_build(step, env, b)
    elif wanted:
        made = _BUILDERS[step.step_name](step, env, b, wanted)
    if step.step_name == "one_hot":  # its indicators replace the encoded columns
        for column in step.columns_:
            env.pop(column, None)
    env.update(made)


# -- per-column transforms -----------------------------------------------------------------


def _numbers(step: FeatureStep, env: Env, wanted: list[str]) -> list[Col]:
    cols = [env[c] for c in wanted]
    text = [c for c, col in zip(wanted, cols, strict=True) if col.kind != "number"]
    if text:
        raise NotConvertible(f"step {step.step_name!r} gets text column {text[0]!r}")
    return cols


def _stats(step: FeatureStep, attribute: str, wanted: list[str], owner: Any = None) -> np.ndarray:
    """A fitted per-column attribute, for ``wanted`` only, as a ``[1, k]`` row."""
    values = dict(zip(step.columns_, getattr(owner or step.estimator_, attribute), strict=True))
    return np.array([[float(values[c]) for c in wanted]], dtype=np.float64)


def _impute(step: FeatureStep, env: Env, b: GraphBuilder, wanted: list[str]) -> dict[str, Col]:
    fills = dict(zip(step.columns_, step.estimator_.statistics_, strict=True))
    made: dict[str, Col] = {}
    numbers = [c for c in wanted if env[c].kind == "number"]
    texts = [c for c in wanted if env[c].kind == "string"]
    if numbers:
        # keep_empty_features: a column empty at fit is filled with 0 (its statistic is NaN)
        fill = [_finite_or_zero(fills[c]) for c in numbers]
        block = b.block([env[c] for c in numbers])
        missing = b.node("IsNaN", [block])
        out = b.node("Where", [missing, b.const([fill]), block], "impute")
        made.update(zip(numbers, split_cols(out, len(numbers)), strict=True))
    if texts:
        bad = [c for c in texts if not isinstance(fills[c], str)]
        if bad:
            raise NotConvertible(f"impute fills text column {bad[0]!r} with a non-text value")
        block = b.block([env[c] for c in texts])
        missing = b.node("Equal", [block, b.const([MISSING_TEXT])])
        out = b.node("Where", [missing, b.const([[fills[c] for c in texts]]), block], "impute")
        made.update(zip(texts, split_cols(out, len(texts), "string"), strict=True))
    return made


def _finite_or_zero(value: Any) -> float:
    number = float(value)
    return number if np.isfinite(number) else 0.0


def _affine(
    b: GraphBuilder, block: str, ops: list[tuple[str, np.ndarray | None]], hint: str
) -> str:
    for op, values in ops:
        if values is not None:
            block = b.node(op, [block, b.const(values)], hint)
    return block


def _standardize(step: FeatureStep, env: Env, b: GraphBuilder, wanted: list[str]) -> dict[str, Col]:
    cols = _numbers(step, env, wanted)
    scaler = step.estimator_
    return _scaled(b, b.block(cols), wanted, scaler, step)


def _scaled(
    b: GraphBuilder, block: str, wanted: list[str], scaler: Any, step: Any
) -> dict[str, Col]:
    """``StandardScaler.transform`` as a centring and a division (as scikit-learn does)."""
    ops = [
        ("Sub", _stats(step, "mean_", wanted, scaler) if scaler.with_mean else None),
        ("Div", _stats(step, "scale_", wanted, scaler) if scaler.with_std else None),
    ]
    out = _affine(b, block, ops, "standardize")
    return dict(zip(wanted, split_cols(out, len(wanted)), strict=True))


def _scale(step: FeatureStep, env: Env, b: GraphBuilder, wanted: list[str]) -> dict[str, Col]:
    block = b.block(_numbers(step, env, wanted))
    scaler = step.estimator_
    if step.method == "robust":
        ops = [
            ("Sub", _stats(step, "center_", wanted) if scaler.with_centering else None),
            ("Div", _stats(step, "scale_", wanted) if scaler.with_scaling else None),
        ]
    else:
        low, high = (float(v) for v in scaler.feature_range)
        clip = scaler.clip
        ops = [
            ("Mul", _stats(step, "scale_", wanted)),
            ("Add", _stats(step, "min_", wanted)),
            ("Max", np.array([[low]]) if clip else None),
            ("Min", np.array([[high]]) if clip else None),
        ]
    out = _affine(b, block, ops, "scale")
    return dict(zip(wanted, split_cols(out, len(wanted)), strict=True))


def _log(step: FeatureStep, env: Env, b: GraphBuilder, wanted: list[str]) -> dict[str, Col]:
    block = b.block(_numbers(step, env, wanted))
    out = b.node("Log", [b.node("Add", [block, b.const([[1.0]])])], "log1p")
    return dict(zip(wanted, split_cols(out, len(wanted)), strict=True))


def _power(step: FeatureStep, env: Env, b: GraphBuilder, wanted: list[str]) -> dict[str, Col]:
    lambdas = dict(zip(step.columns_, step.estimator_.lambdas_, strict=True))
    parts = []
    for column in wanted:
        x = b.column(_numbers(step, env, [column])[0])
        lam = float(lambdas[column])
        if step.method == "box-cox":
            parts.append(_box_cox(b, x, lam))
        else:
            parts.append(_yeo_johnson(b, x, lam))
    block = parts[0] if len(parts) == 1 else b.node("Concat", parts, "power", axis=1)
    if not step.standardize:
        return dict(zip(wanted, split_cols(block, len(wanted)), strict=True))
    return _scaled(b, block, wanted, step.estimator_._scaler, step)


def _box_cox(b: GraphBuilder, x: str, lam: float) -> str:
    if lam == 0:
        return b.node("Log", [x], "boxcox")
    powered = b.node("Pow", [x, b.const([[lam]])])
    return b.node("Div", [b.node("Sub", [powered, b.const([[1.0]])]), b.const([[lam]])], "boxcox")


def _yeo_johnson(b: GraphBuilder, x: str, lam: float) -> str:
    """scipy's Yeo-Johnson: ``((x+1)^λ-1)/λ`` for x ≥ 0, ``-((1-x)^(2-λ)-1)/(2-λ)`` below."""
    eps = float(np.spacing(1.0))
    one = b.const([[1.0]])
    positive = b.node("GreaterOrEqual", [x, b.const([[0.0]])])
    up = b.node("Add", [x, one])
    if abs(lam) < eps:
        high = b.node("Log", [up])
    else:
        lifted = b.node("Sub", [b.node("Pow", [up, b.const([[lam]])]), one])
        high = b.node("Div", [lifted, b.const([[lam]])])
    down = b.node("Sub", [one, x])
    if abs(lam - 2) > eps:
        lowered = b.node("Sub", [b.node("Pow", [down, b.const([[2 - lam]])]), one])
        low = b.node("Neg", [b.node("Div", [lowered, b.const([[2 - lam]])])])
    else:
        low = b.node("Neg", [b.node("Log", [down])])
    return b.node("Where", [positive, high, low], "yeojohnson")


def _bucketize(step: FeatureStep, env: Env, b: GraphBuilder, wanted: list[str]) -> dict[str, Col]:
    if step.edges is not None:
        edges = step._edges()
    else:
        edges = {
            c: list(e[1:-1]) for c, e in zip(step.columns_, step.estimator_.bin_edges_, strict=True)
        }
    parts = []
    for column in wanted:
        x = b.column(_numbers(step, env, [column])[0])
        cuts = [float(e) for e in edges[column]]
        if not cuts:
            raise NotConvertible(f"bucketize has a single bucket for column {column!r}")
        above = b.node("Cast", [b.node("GreaterOrEqual", [x, b.const([cuts])])], to=11)
        bucket = b.node("ReduceSum", [above, b.const(np.array([1], np.int64))], keepdims=1)
        if step.edges is not None:  # a missing value stays missing
            nan = b.const([[np.nan]])
            bucket = b.node("Where", [b.node("IsNaN", [x]), nan, bucket], "bucket")
        parts.append(bucket)
    block = parts[0] if len(parts) == 1 else b.node("Concat", parts, "buckets", axis=1)
    return dict(zip(wanted, split_cols(block, len(wanted)), strict=True))


# -- encoders ------------------------------------------------------------------------------


def _one_hot_names(step: FeatureStep) -> dict[str, list[str]]:
    """The indicator columns one-hot makes, per input column (scikit-learn's names)."""
    encoder = step.estimator_
    if step.handle_unknown == "error":
        raise NotConvertible("one_hot with handle_unknown 'error' raises on a new category")
    if any(i is not None for i in getattr(encoder, "infrequent_categories_", None) or []):
        raise NotConvertible("one_hot groups infrequent categories")
    names = [str(n) for n in encoder.get_feature_names_out()]
    out: dict[str, list[str]] = {}
    start = 0
    for index, column in enumerate(step.columns_):
        count = len(_kept_categories(encoder, index))
        out[column] = names[start : start + count]
        start += count
    if start != len(names):
        raise NotConvertible("one_hot's output names do not line up with its categories")
    return out


def _kept_categories(encoder: Any, index: int) -> list[Any]:
    categories = list(encoder.categories_[index])
    drop = getattr(encoder, "drop_idx_", None)
    if drop is not None and drop[index] is not None:
        del categories[int(drop[index])]
    return categories


def _one_hot(step: FeatureStep, env: Env, b: GraphBuilder, wanted: list[str]) -> dict[str, Col]:
    made: dict[str, Col] = {}
    chosen = set(wanted)
    for index, (column, names) in enumerate(_one_hot_names(step).items()):
        if not chosen & set(names):
            continue
        categories = _kept_categories(step.estimator_, index)
        hits = _matches(b, env[column], categories, column)
        out = b.node("Cast", [hits], "one_hot", to=11)
        made.update(zip(names, split_cols(out, len(names)), strict=True))
    return made


def _matches(b: GraphBuilder, col: Col, categories: list[Any], column: str) -> str:
    """``[rows, k]`` booleans: row equals category j (a missing category: row is missing)."""
    x = b.column(col)
    if col.kind == "string":
        texts = [MISSING_TEXT if _is_missing(c) else c for c in categories]
        if not all(isinstance(t, str) for t in texts):
            raise NotConvertible(f"column {column!r} mixes text and other categories")
        return b.node("Equal", [x, b.const([texts])])
    missing = [i for i, c in enumerate(categories) if _is_missing(c)]
    values = [float(c) for c in categories if not _is_missing(c)]
    if missing and missing != [len(categories) - 1]:
        raise NotConvertible(f"column {column!r} has its missing category out of place")
    nan = b.node("IsNaN", [x]) if missing else None
    if not values:
        return nan or b.node("Equal", [x, b.const([[np.nan]])])
    equal = b.node("Equal", [x, b.const([values])])
    return equal if nan is None else b.node("Concat", [equal, nan], axis=1)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _ordinal(step: FeatureStep, env: Env, b: GraphBuilder, wanted: list[str]) -> dict[str, Col]:
    encoder = step.estimator_
    if step.handle_unknown == "error":
        raise NotConvertible("ordinal with handle_unknown 'error' raises on a new category")
    unknown = b.const([[float(step.unknown_value)]])
    missing_code = b.const([[float(encoder.encoded_missing_value)]])
    parts = []
    for column in wanted:
        index = list(step.columns_).index(column)
        categories = [c for c in encoder.categories_[index] if not _is_missing(c)]
        col = env[column]
        hits = b.node("Cast", [_matches(b, col, categories, column)], to=11)
        found = b.node("ReduceMax", [hits, b.const(np.array([1], np.int64))], keepdims=1)
        code = b.node("Cast", [b.node("ArgMax", [hits], axis=1, keepdims=1)], to=11)
        known = b.node("Cast", [found], to=9)
        value = b.node("Where", [known, code, unknown], "ordinal")
        missing = _missing(b, col)
        parts.append(b.node("Where", [missing, missing_code, value], "ordinal"))
    block = parts[0] if len(parts) == 1 else b.node("Concat", parts, "ordinal", axis=1)
    return dict(zip(wanted, split_cols(block, len(wanted)), strict=True))


def _missing(b: GraphBuilder, col: Col) -> str:
    x = b.column(col)
    if col.kind == "string":
        return b.node("Equal", [x, b.const([[MISSING_TEXT]])])
    return b.node("IsNaN", [x])


_BUILDERS: Mapping[str, Builder] = {
    "impute": _impute,
    "standardize": _standardize,
    "scale": _scale,
    "log": _log,
    "power": _power,
    "bucketize": _bucketize,
    "one_hot": _one_hot,
    "ordinal": _ordinal,
}
