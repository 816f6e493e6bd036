"""Building an ONNX graph column by column, with columns kept together as blocks.

A feature pipeline works on named columns; ONNX Runtime works fastest on few, wide tensors
(each node costs a fixed fraction of a microsecond, whatever its width). So a column is a
``Col``: one column (``index``) of a 2-D tensor ``[rows, width]``. A step over several
columns asks for them as one block (``GraphBuilder.block``), which reuses a tensor when the
columns are exactly its columns, in order, and otherwise gathers or concatenates them; it
then makes one node per operation for the whole block and hands back one ``Col`` per
column of the result. Numbers are doubles (as the pipeline computes them); text is string.

``NotConvertible`` says why something has no ONNX form; the compiler then falls back to
the native servable and records the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gristmill.servables.columns import MISSING_TEXT
from gristmill.servables.packed import PACKED_COLUMNS, PACKED_INPUT
from gristmill.servables.unconvertible import NotConvertible

__all__ = [
    "MISSING_TEXT",
    "PACKED_COLUMNS",
    "PACKED_INPUT",
    "Col",
    "GraphBuilder",
    "NotConvertible",
    "pruned",
    "split_cols",
]

ColKind = Literal["number", "string"]

OPSET = 21
ML_OPSET = 3


@dataclass(frozen=True)
class Col:
    """Column ``index`` of the 2-D tensor ``tensor`` (``width`` columns), of ``kind``."""

    tensor: str
    index: int
    width: int
    kind: ColKind


@dataclass
class GraphBuilder:
    """Nodes, constants and inputs of one graph under construction; names are unique."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    inputs: dict[str, onnx.ValueInfoProto] = field(default_factory=dict)
    packed: tuple[str, ...] = ()
    _count: int = 0
    _slices: dict[tuple[str, int], str] = field(default_factory=dict)

    def name(self, hint: str) -> str:
        self._count += 1
        return f"gm/{hint}/{self._count}"

    def const(self, values: Any, hint: str = "c") -> str:
        """A constant tensor (numbers as doubles unless already typed; text as strings)."""
        array = np.asarray(values)
        if array.dtype.kind in "OUS":
            array = array.astype(object)
        elif array.dtype.kind in "biuf" and array.dtype != np.int64:
            array = array.astype(np.float64)
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: Sequence[str], hint: str = "", **attrs: Any) -> str:
        """Add one node with a single output; returns the output's name."""
        out = self.name(hint or op.lower())
        domain = attrs.pop("domain", "")
        self.nodes.append(helper.make_node(op, list(inputs), [out], domain=domain, **attrs))
        return out

    def input(self, column: str, kind: ColKind) -> Col:
        """A graph input ``[rows, 1]`` named like the raw column."""
        element = TensorProto.STRING if kind == "string" else TensorProto.DOUBLE
        self.inputs[column] = helper.make_tensor_value_info(column, element, [None, 1])
        return Col(column, 0, 1, kind)

    def input_block(self, columns: Sequence[str]) -> list[Col]:
        """The numeric raw ``columns`` as one graph input ``[rows, len(columns)]``
        (``PACKED_INPUT``), in that order, recorded in the model's metadata
        (``PACKED_COLUMNS``): a call then feeds one tensor instead of one per column, and a
        step over them all reads the input as it is."""
        self.packed = tuple(columns)
        self.inputs[PACKED_INPUT] = helper.make_tensor_value_info(
            PACKED_INPUT, TensorProto.DOUBLE, [None, len(columns)]
        )
        return split_cols(PACKED_INPUT, len(columns))

    def column(self, col: Col) -> str:
        """``col`` as a tensor of shape ``[rows, 1]``."""
        if col.width == 1:
            return col.tensor
        key = (col.tensor, col.index)
        if key not in self._slices:
            index = self.const(np.array([col.index], dtype=np.int64), "index")
            self._slices[key] = self.node("Gather", [col.tensor, index], "col", axis=1)
        return self._slices[key]

    def block(self, cols: Sequence[Col]) -> str:
        """The columns ``cols`` side by side as one ``[rows, len(cols)]`` tensor."""
        runs: list[list[Col]] = []
        for col in cols:
            if runs and runs[-1][0].tensor == col.tensor:
                runs[-1].append(col)
            else:
                runs.append([col])
        parts = [self._run(run) for run in runs]
        return parts[0] if len(parts) == 1 else self.node("Concat", parts, "block", axis=1)

    def _run(self, run: list[Col]) -> str:
        first = run[0]
        if [c.index for c in run] == list(range(first.width)):
            return first.tensor
        if len(run) == 1:
            return self.column(first)
        index = self.const(np.array([c.index for c in run], dtype=np.int64), "index")
        return self.node("Gather", [first.tensor, index], "cols", axis=1)


def split_cols(tensor: str, width: int, kind: ColKind = "number") -> list[Col]:
    """One ``Col`` per column of a ``[rows, width]`` tensor."""
    return [Col(tensor, i, width, kind) for i in range(width)]


def pruned(
    nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto], outputs: Sequence[str]
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], set[str]]:
    """The nodes and constants ``outputs`` depend on (in order), and every name they read."""
    needed = set(outputs)
    kept: list[onnx.NodeProto] = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    return kept, [t for t in initializers if t.name in needed], needed
