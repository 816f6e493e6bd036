"""``split``: train / validation / test subsets of a table, with their manifest and warnings.

The manifest's ``split_id`` is derived from the feature set, the strategy and the parameters
that decide membership (the seed among them), so the same request on the same feature set
always gives the same id and the same rows. A seeded strategy asked for without a seed gets
a fresh one, recorded in ``params``, so it can be replayed too. Only ``custom`` cannot be
replayed from its parameters: its ``params`` carry a digest of the assignment (so two
different outcomes never share an id), and ``membership_table`` gives the rows to store.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.config.spec import SplitSpec
from gristmill.core.ids import digest_bytes, digest_json
from gristmill.errors import ConfigError, DataError
from gristmill.segregation.diagnostics import Thresholds, diagnose
from gristmill.segregation.result import SUBSETS, SplitResult, warnings_and_notes
from gristmill.segregation.strategies import (
    NEEDS_COLUMN,
    SEEDED,
    Assignment,
    CustomSplit,
    Plan,
    assign,
    known_strategies,
    resolve_custom,
)
from gristmill.stores.models import Split

PREFIX = "sp_"
DIGEST_CHARS = 24  # as for feature set ids: 96 bits
MAX_SEED = 2**32  # what scikit-learn accepts as random_state


def split(
    table: pa.Table,
    spec: SplitSpec,
    *,
    label: str | None = None,
    feature_set_id: str = "",
    custom: CustomSplit | str | None = None,
    thresholds: Thresholds | None = None,
    not_features: Iterable[str | None] = (),
) -> SplitResult:
    """Split ``table`` as ``spec`` says (see ``segregation.strategies`` for each strategy).

    ``label`` names the label column (needed by ``stratified``; it enables the class
    warnings and ``SplitResult.features/labels``). ``feature_set_id`` goes into the id and
    the manifest. ``custom`` is the function (or its ``module:function`` import path) of the
    ``custom`` strategy. ``not_features`` names columns not tested for train/test shift
    (a feature set's entity and timestamp). ``test_size`` and ``validation_size`` are
    shares of the whole table (of its groups for ``group``).

    Raises ``ConfigError`` for a request that cannot work whatever the data (unknown
    strategy, a missing ``column``/``label``/``custom``, sizes adding up to 1 or more, an
    unresolvable import path) and ``DataError`` for data that does not fit it (a column that
    is not in the table, an empty table, a class of one row for ``stratified``).
    """
    plan = _plan(table, spec, label, custom)
    assignment = assign(table, plan)
    subsets = {name: table.take(pa.array(rows, pa.int64())) for name, rows in assignment.items()}
    found = diagnose(
        table, assignment, subsets, plan, thresholds or Thresholds(), not_features=not_features
    )
    warnings, notes = warnings_and_notes(found)
    params = _params(plan, assignment)
    manifest = Split(
        split_id=split_id(feature_set_id, plan.strategy, params),
        feature_set_id=feature_set_id,
        strategy=plan.strategy,
        params=params,
        sizes={name: len(rows) for name, rows in assignment.items()},
        created_at=datetime.now(UTC),
        warnings=[warning.to_dict() for warning in found],
    )
    return SplitResult(
        train=subsets["train"],
        test=subsets["test"],
        validation=subsets.get("validation"),
        manifest=manifest,
        warnings=warnings,
        label=label,
        rows=assignment,
        notes=notes,
    )


def split_id(feature_set_id: str, strategy: str, params: dict[str, Any]) -> str:
    """``sp_`` and 24 hex digits of the digest of the feature set, strategy and params."""
    identity = {"feature_set_id": feature_set_id, "strategy": strategy, "params": params}
    return PREFIX + digest_json(identity).removeprefix("sha256:")[:DIGEST_CHARS]


def _plan(
    table: pa.Table, spec: SplitSpec, label: str | None, custom: CustomSplit | str | None
) -> Plan:
    strategy = spec.strategy
    if strategy not in known_strategies():
        raise ConfigError(
            f"unknown split strategy {strategy!r}; known: {', '.join(known_strategies())}"
        )
    shares = [s for s in (spec.test_size, spec.validation_size) if isinstance(s, float)]
    if len(shares) == 2 and sum(shares) >= 1:
        raise ConfigError(
            f"split.test_size {spec.test_size} and split.validation_size "
            f"{spec.validation_size} leave no rows to train on; keep their sum below 1"
        )
    _check_columns(table, spec, label)
    _check_counts(table, spec)
    function, name = _custom_function(strategy, custom)
    return Plan(
        strategy=strategy,
        test_size=spec.test_size,
        validation_size=spec.validation_size,
        seed=_seed(spec) if strategy in SEEDED else None,
        column=spec.column if strategy in NEEDS_COLUMN else None,
        label=label,
        custom=function,
        custom_name=name,
    )


def _check_counts(table: pa.Table, spec: SplitSpec) -> None:
    """``ConfigError`` naming ``split.test_size`` (or ``validation_size``) when counts of rows
    (or of groups, for ``group``) leave none to train on."""
    counts = [s for s in (spec.test_size, spec.validation_size) if isinstance(s, int)]
    if not counts:
        return
    units, kind = table.num_rows, "rows"
    if spec.strategy == "group" and spec.column in table.column_names:
        units, kind = len(pc.unique(table.column(spec.column))), "groups"
    if sum(counts) < units:
        return
    key = "split.test_size" if isinstance(spec.test_size, int) else "split.validation_size"
    given = " + ".join(str(c) for c in counts)
    raise ConfigError(
        f"{key}: {given} {kind} leave none of the {units} {kind} to train on; give a count "
        f"below {units} or a share of the {kind} (a number between 0 and 1, e.g. 0.25)"
    )


def _check_columns(table: pa.Table, spec: SplitSpec, label: str | None) -> None:
    if table.num_rows == 0:
        raise DataError("cannot split a table without rows")
    if label is not None:
        _require_column(table, label, "label")
    if spec.strategy == "stratified" and label is None:
        raise ConfigError(
            "the stratified split needs a label: pass label= (the feature set's label column)"
        )
    if spec.strategy in NEEDS_COLUMN:
        if spec.column is None:
            what = "timestamp column" if spec.strategy == "time" else "group key column"
            raise ConfigError(
                f"the {spec.strategy} split needs split.column, the {what}; "
                f"columns: {', '.join(table.column_names)}"
            )
        _require_column(table, spec.column, "split.column")


def _custom_function(
    strategy: str, custom: CustomSplit | str | None
) -> tuple[CustomSplit | None, str | None]:
    if strategy != "custom":
        if custom is not None:
            raise ConfigError(
                f"custom= is given but split.strategy is {strategy!r}; set strategy: custom"
            )
        return None, None
    if custom is None:
        raise ConfigError(
            "the custom split needs a function: pass custom= (a callable or 'module:function')"
        )
    return resolve_custom(custom)


def _seed(spec: SplitSpec) -> int:
    if spec.seed is None:
        return secrets.randbelow(MAX_SEED)
    if not 0 <= spec.seed < MAX_SEED:
        raise ConfigError(f"split.seed {spec.seed} is out of range; use 0 to {MAX_SEED - 1}")
    return spec.seed


def _params(plan: Plan, assignment: Assignment) -> dict[str, Any]:
    """What decides membership, JSON-ready: enough to replay every strategy but custom."""
    if plan.strategy == "custom":
        return {"custom": plan.custom_name, "assignment": _assignment_digest(assignment)}
    params: dict[str, Any] = {"test_size": plan.test_size, "validation_size": plan.validation_size}
    if plan.strategy in SEEDED:
        params["seed"] = plan.seed
    if plan.column is not None:
        params["column"] = plan.column
    if plan.strategy == "stratified":
        params["label"] = plan.label
    return params


def _assignment_digest(assignment: Assignment) -> str:
    """The digest of each row's subset code, in source order (a custom split covers all rows)."""
    codes = np.empty(sum(len(rows) for rows in assignment.values()), np.int8)
    for name, rows in assignment.items():
        codes[rows] = SUBSETS.index(name)
    return digest_bytes(codes.tobytes())


def _require_column(table: pa.Table, name: str, role: str) -> None:
    if name not in table.column_names:
        raise DataError(
            f"{role} {name!r} is not a column of the table; "
            f"columns: {', '.join(table.column_names)}"
        )
