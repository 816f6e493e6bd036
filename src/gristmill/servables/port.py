"""What the server asks of a registered model version: typed columns in, predictions out.

A *servable* is a model version made ready to answer requests: the version's fitted
feature pipeline and its learner, compiled once (when the version is registered or first
loaded) and cached in the artifact store by digest. It takes the *raw* columns a client
sends (or the online store holds for an entity), as numpy arrays, and never uses pandas
per request. Two kinds:

* ``onnx`` — pipeline and learner as one ONNX graph run by ONNX Runtime, accepted only when
  its outputs match the native scorer's on held-out rows (``Parity``);
* ``native`` — where a step or learner cannot be converted (a custom step, ARIMA, …): the
  fitted objects themselves, fed numpy arrays of the manifest's columns.

The manifest says which kind a version is and why, what it takes and what it gives.

Besides raw columns, a servable takes the *features* of an entity as the online store holds
them (vectors made by this version's own fitted pipeline, ``manifest.pipeline``):
``predict_features`` runs the learner alone on them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

ServableKind = Literal["onnx", "native"]
OutputKind = Literal["class", "probabilities", "number", "cluster", "forecast"]
ColumnType = Literal["float64", "int64", "bool", "string", "datetime"]


@dataclass(frozen=True)
class InputColumn:
    """One raw column a servable takes: its name, its type, whether it may be missing
    (``None``/NaN) and whether the online store holds it (looked up by entity)."""

    name: str
    type: ColumnType
    nullable: bool = True
    online: bool = False


@dataclass(frozen=True)
class Parity:
    """How the compiled graph was checked against the native scorer, on ``rows`` held-out
    rows of the feature set: equal classes, largest absolute difference of probabilities or
    numbers, and the tolerance it had to stay within.

    ``rows_from`` says where the rows came from (the split's test rows, or a sample of the
    raw batch when those cannot be found again); ``rule`` how values were compared
    (probabilities absolutely, numbers relative to their size above 1). ``blanked`` of the
    ``rows`` are copies of the first held-out row with one column missing each (so
    ``rows - blanked`` are held-out rows).
    """

    rows: int
    classes_equal: bool | None
    max_abs_diff: float | None
    tolerance: float
    passed: bool
    rows_from: str = ""
    rule: str = ""
    blanked: int = 0


@dataclass(frozen=True)
class ServableManifest:
    """What a servable is: the version it serves, its kind (and why), inputs and outputs.

    ``digest`` names the compiled servable artifact (verified on every load); ``bundle``
    the model bundle it was compiled from; ``pipeline`` the fitted feature pipeline's
    digest (online vectors made by it are the only ones this version may read).

    ``inputs`` are the raw columns ``predict`` needs (after feature selection: a column no
    kept feature reads is not asked for); ``features`` the columns ``predict_features``
    takes, which the online store holds per ``entity`` in the view ``view`` (the feature
    set's name) — ``online`` is true for them when the pipeline has an entity. ``output``:
    ``probabilities`` is a class together with a probability per class.
    """

    model: str
    version: int
    kind: ServableKind
    reason: str
    digest: str
    bundle: str
    pipeline: str | None
    task: str
    output: OutputKind
    inputs: tuple[InputColumn, ...]
    entity: str | None = None
    classes: tuple[Any, ...] | None = None
    parity: Parity | None = None
    libraries: Mapping[str, str] = field(default_factory=dict)
    features: tuple[InputColumn, ...] = ()
    view: str | None = None

    @property
    def ref(self) -> str:
        """``<model>/<version>``."""
        return f"{self.model}/{self.version}"


@dataclass(frozen=True)
class Predictions:
    """One answer per input row, in order: ``values`` holds the class, number, cluster id
    or forecast; ``probabilities`` (rows by classes, in ``manifest.classes`` order) for a
    classifier that has them."""

    values: np.ndarray
    probabilities: np.ndarray | None = None
    rejected: np.ndarray | None = None
    """Booleans, true for a row a ``filter`` step of the pipeline rejects: it has no
    prediction (its value is missing). ``None`` when every row was answered."""


class NumericColumns(Mapping[str, np.ndarray]):
    """Input columns read from one float64 block (``names`` by rows), each column a row of
    ``block``: what a protocol hands over when every input of a request was a finite number.
    ``block`` is ``[columns, rows]``, usually the transposed view of a row-major ``[rows,
    columns]`` matrix (``matrix``), which a servable whose graph takes its inputs as one
    tensor feeds as it is. The prediction log keeps the block, not the columns, so a write
    joins one array per request instead of one per column and request. A column is made
    when asked for (a graph fed the block never asks). Not to be changed once made."""

    __slots__ = ("_index", "block", "names")

    def __init__(self, names: tuple[str, ...], block: np.ndarray) -> None:
        if len(names) != len(block):
            raise ValueError(f"{len(names)} names for a block of {len(block)} columns")
        self.names = names
        self.block = block
        self._index: dict[str, int] | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        index = self._index
        if index is None:
            index = self._index = {n: i for i, n in enumerate(self.names)}
        return self.block[index[name]]  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def rows(self) -> int:
        """The number of rows (``len`` is the number of columns, as for any mapping)."""
        return int(self.block.shape[1])

    def __contains__(self, name: object) -> bool:
        return name in self.names

    @classmethod
    def of_rows(cls, names: tuple[str, ...], matrix: np.ndarray) -> NumericColumns:
        """The columns of the row-major ``[rows, columns]`` ``matrix`` (no copy)."""
        return cls(names, matrix.T)

    @property
    def matrix(self) -> np.ndarray:
        """The values as a C-contiguous ``[rows, columns]`` matrix (a view when the block is
        a transposed row-major matrix, else a copy)."""
        return np.ascontiguousarray(self.block.T)


class Servable(Protocol):
    """A compiled model version. ``predict`` takes one array per input column (every
    column of ``manifest.inputs``, equal lengths) and answers every row; a bad value gets
    ``DataError`` naming the column (and row when known)."""

    @property
    def manifest(self) -> ServableManifest: ...

    def predict(self, columns: Mapping[str, np.ndarray]) -> Predictions: ...

    def predict_features(self, columns: Mapping[str, np.ndarray]) -> Predictions:
        """The learner alone on feature columns (every column of ``manifest.features``), as
        the online store holds them for an entity; errors as ``predict``."""
        ...
