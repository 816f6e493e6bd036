"""What a split returns: the subsets as Arrow tables, the manifest, the warnings, the membership."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from gristmill.errors import ConfigError
from gristmill.stores.models import Split

Subset = Literal["train", "validation", "test"]
SUBSETS: tuple[Subset, ...] = ("train", "validation", "test")

WarningKind = Literal["imbalance", "small", "empty", "shift", "trend"]
Rows = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SplitWarning:
    """Something about a subset that may make a model or its metrics misleading.

    * ``imbalance``: a class's share in ``subset`` differs from its share in train;
    * ``small``: ``subset`` has few rows, or no row of some class;
    * ``empty``: the parameters leave ``subset`` without rows;
    * ``shift``: ``column`` is distributed differently in ``subset`` than in train;
    * ``trend`` (a *note*, not a warning: ``SplitResult.notes``): columns that trend with
      time, whose shift a ``sequential`` or ``time`` split always shows, so it is not warned
      about.

    ``numbers`` holds the measurements and thresholds the message quotes.
    """

    kind: WarningKind
    subset: Subset
    message: str
    numbers: dict[str, float] = field(default_factory=dict)
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class SplitResult:
    """The subsets of one table, each an Arrow table with every column (label included).

    ``validation`` is ``None`` unless the split asked for one. ``rows`` maps each subset to
    its rows' indices in the source table, in the subset's order (``membership_table``
    turns it into a table to store). ``notes`` say what is expected of this split and so
    not warned about (a trend); the manifest keeps them with the warnings, by kind.
    """

    train: pa.Table
    test: pa.Table
    manifest: Split
    validation: pa.Table | None = None
    warnings: list[SplitWarning] = field(default_factory=list)
    label: str | None = None
    rows: Mapping[Subset, Rows] = field(default_factory=dict, repr=False)
    notes: list[SplitWarning] = field(default_factory=list)

    @property
    def split_id(self) -> str:
        return self.manifest.split_id

    def table(self, subset: Subset) -> pa.Table:
        """One subset with every column."""
        if subset == "train":
            return self.train
        if subset == "test":
            return self.test
        if subset == "validation" and self.validation is not None:
            return self.validation
        if subset == "validation":
            raise ConfigError(
                "this split has no validation subset; set split.validation_size to make one"
            )
        raise ConfigError(f"no subset named {subset!r}; known: {', '.join(SUBSETS)}")

    def features(self, subset: Subset = "train") -> pa.Table:
        """One subset without the label column (every column if the split had no label)."""
        table = self.table(subset)
        return table if self.label is None else table.drop_columns([self.label])

    def labels(self, subset: Subset = "train") -> pa.ChunkedArray:
        """The label column of one subset."""
        if self.label is None:
            raise ConfigError("this split was made without a label; pass label= to split()")
        return self.table(subset).column(self.label)


NOTE_KINDS: frozenset[str] = frozenset({"trend"})
"""Kinds of ``SplitWarning`` that are notes: said once, not warned about."""


def warnings_and_notes(
    found: list[SplitWarning],
) -> tuple[list[SplitWarning], list[SplitWarning]]:
    """``found`` (as ``diagnose`` or a manifest gives them) parted into warnings and notes."""
    notes = [w for w in found if w.kind in NOTE_KINDS]
    return [w for w in found if w.kind not in NOTE_KINDS], notes


def membership_table(result: SplitResult) -> pa.Table:
    """Which subset each source row is in: ``row`` (index in the source table, ascending)
    and ``subset`` (dictionary-encoded name). Store it (e.g. as Arrow IPC in the artifact
    store) and record its digest as ``Split.membership`` when the rule cannot be replayed."""
    names = [name for name in SUBSETS if name in result.rows]
    rows = np.concatenate([result.rows[name] for name in names]) if names else np.empty(0)
    codes = (
        np.concatenate(
            [np.full(len(result.rows[name]), SUBSETS.index(name), np.int8) for name in names]
        )
        if names
        else np.empty(0, np.int8)
    )
    order = np.argsort(rows, kind="stable")
    subset = pa.DictionaryArray.from_arrays(pa.array(codes[order]), pa.array(SUBSETS))
    return pa.table({"row": pa.array(rows[order], pa.int64()), "subset": subset})
