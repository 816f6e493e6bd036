"""The ONNX form of a ``derive`` step: its checked expression as graph nodes.

The expression language (``features.steps.expressions``) is arithmetic, comparisons,
``and``/``or``/``not``, ``in`` over a literal list and a few math functions; each maps to
ONNX operators on ``[rows, 1]`` columns with pandas' meaning: ``//`` floors, ``%`` takes the
divisor's sign, a comparison with a missing value is false (``!=`` true), a truth value
used as a number is 0 or 1. What has no such form (``arctan2``, text arithmetic, ordering
text, an expression without a column) raises ``NotConvertible``.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gristmill.features.steps import FeatureStep
from gristmill.servables.graph import Col, GraphBuilder, NotConvertible

_BACKTICKS = re.compile(r"`([^`]+)`")
_BOOL, _DOUBLE = 9, 11  # ONNX element types

_FUNCTIONS = {
    "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos",
    "tan": "Tan", "arcsin": "Asin", "arccos": "Acos", "arctan": "Atan", "sinh": "Sinh",
    "cosh": "Cosh", "tanh": "Tanh", "arcsinh": "Asinh", "arccosh": "Acosh",
    "arctanh": "Atanh", "floor": "Floor", "ceil": "Ceil",
}  # fmt: skip
_COMPARE = {ast.Lt: "Less", ast.LtE: "LessOrEqual", ast.Gt: "Greater", ast.GtE: "GreaterOrEqual"}
_ARITHMETIC = {ast.Add: "Add", ast.Sub: "Sub", ast.Mult: "Mul", ast.Div: "Div", ast.Pow: "Pow"}

Kind = Literal["number", "bool", "string", "constant"]


@dataclass(frozen=True)
class _Value:
    kind: Kind
    tensor: str = ""
    constant: Any = None


def derive_produces(step: FeatureStep) -> dict[str, list[str]]:
    """The one column ``derive`` makes and the columns its expression reads."""
    return {step.name: list(step.expression_.columns)}


def derive_build(step: FeatureStep, env: dict[str, Col], b: GraphBuilder) -> dict[str, Col]:
    """The derived column, computed by graph nodes."""
    tree, names = _parse(step.expr)
    value = _Compiler(env, b, names).visit(tree.body)
    if value.kind == "constant":
        raise NotConvertible(f"derive {step.name!r}: the expression reads no column")
    if value.kind == "bool":
        return {
            step.name: Col(b.node("Cast", [value.tensor], "derive", to=_DOUBLE), 0, 1, "number")
        }
    return {step.name: Col(value.tensor, 0, 1, "string" if value.kind == "string" else "number")}


def _parse(text: str) -> tuple[ast.Expression, dict[str, str]]:
    names: dict[str, str] = {}

    def placeholder(match: re.Match[str]) -> str:
        key = f"__column_{len(names)}__"
        names[key] = match.group(1)
        return key

    return ast.parse(_BACKTICKS.sub(placeholder, text).strip(), mode="eval"), names


class _Compiler:
    def __init__(self, env: dict[str, Col], b: GraphBuilder, names: dict[str, str]) -> None:
        self.env, self.b, self.names = env, b, names

    def visit(self, node: ast.AST) -> _Value:
        method = getattr(self, f"_{type(node).__name__.lower()}", None)
        if method is None:
            raise NotConvertible(f"derive: {type(node).__name__} has no ONNX form")
        value: _Value = method(node)
        return value

    def _name(self, node: ast.Name) -> _Value:
        column = self.names.get(node.id, node.id)
        col = self.env.get(column)
        if col is None:
            raise NotConvertible(f"derive reads column {column!r}, which no step made")
        return _Value("string" if col.kind == "string" else "number", self.b.column(col))

    def _constant(self, node: ast.Constant) -> _Value:
        return _Value("constant", constant=node.value)

    def _number(self, value: _Value) -> str:
        if value.kind == "number":
            return value.tensor
        if value.kind == "bool":
            return self.b.node("Cast", [value.tensor], to=_DOUBLE)
        if value.kind == "constant" and isinstance(value.constant, int | float):
            return self.b.const([[float(value.constant)]])
        raise NotConvertible("derive: arithmetic on text has no ONNX form")

    def _truth(self, value: _Value) -> str:
        if value.kind == "bool":
            return value.tensor
        if value.kind == "constant" and isinstance(value.constant, bool):
            return self.b.const(np.array([[value.constant]], dtype=bool))
        raise NotConvertible("derive: 'and', 'or', 'not' of a non-truth value")

    def _binop(self, node: ast.BinOp) -> _Value:
        op = type(node.op)
        left, right = self.visit(node.left), self.visit(node.right)
        if op in (ast.BitAnd, ast.BitOr):
            name = "And" if op is ast.BitAnd else "Or"
            return _Value("bool", self.b.node(name, [self._truth(left), self._truth(right)]))
        a, c = self._number(left), self._number(right)
        if op in _ARITHMETIC:
            return _Value("number", self.b.node(_ARITHMETIC[op], [a, c]))
        floored = self.b.node("Floor", [self.b.node("Div", [a, c])])
        if op is ast.FloorDiv:
            return _Value("number", floored)
        if op is ast.Mod:  # numpy's mod: the sign of the divisor
            return _Value("number", self.b.node("Sub", [a, self.b.node("Mul", [floored, c])]))
        raise NotConvertible(f"derive: operator {op.__name__} has no ONNX form")

    def _unaryop(self, node: ast.UnaryOp) -> _Value:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not | ast.Invert):
            return _Value("bool", self.b.node("Not", [self._truth(value)]))
        if isinstance(node.op, ast.USub):
            return _Value("number", self.b.node("Neg", [self._number(value)]))
        return _Value("number", self._number(value))

    def _boolop(self, node: ast.BoolOp) -> _Value:
        name = "And" if isinstance(node.op, ast.And) else "Or"
        values = [self._truth(self.visit(v)) for v in node.values]
        out = values[0]
        for other in values[1:]:
            out = self.b.node(name, [out, other])
        return _Value("bool", out)

    def _call(self, node: ast.Call) -> _Value:
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name in ("log10", "log1p", "expm1") and len(node.args) == 1:
            x = self._number(self.visit(node.args[0]))
            if name == "log10":
                log = self.b.node("Log", [x])
                return _Value("number", self.b.node("Div", [log, self.b.const([[math.log(10)]])]))
            if name == "log1p":
                shifted = self.b.node("Add", [x, self.b.const([[1.0]])])
                return _Value("number", self.b.node("Log", [shifted]))
            exp = self.b.node("Exp", [x])
            return _Value("number", self.b.node("Sub", [exp, self.b.const([[1.0]])]))
        if name not in _FUNCTIONS or len(node.args) != 1:
            raise NotConvertible(f"derive: function {name or '?'!r} has no ONNX form")
        x = self._number(self.visit(node.args[0]))
        return _Value("number", self.b.node(_FUNCTIONS[name], [x]))

    def _compare(self, node: ast.Compare) -> _Value:
        left = self.visit(node.left)
        results = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                hit = self._member(left, right_node)
                results.append(self.b.node("Not", [hit]) if isinstance(op, ast.NotIn) else hit)
                continue
            right = self.visit(right_node)
            results.append(self._pair(op, left, right))
            left = right
        out = results[0]
        for other in results[1:]:
            out = self.b.node("And", [out, other])
        return _Value("bool", out)

    def _pair(self, op: ast.cmpop, left: _Value, right: _Value) -> str:
        texts = [v for v in (left, right) if v.kind == "string" or isinstance(v.constant, str)]
        if texts:
            if not isinstance(op, ast.Eq | ast.NotEq) or len(texts) != 2:
                raise NotConvertible("derive: only == and != compare text")
            a, c = (self._text(v) for v in (left, right))
        else:
            a, c = self._number(left), self._number(right)
        if isinstance(op, ast.Eq | ast.NotEq):
            equal = self.b.node("Equal", [a, c])
            return equal if isinstance(op, ast.Eq) else self.b.node("Not", [equal])
        return self.b.node(_COMPARE[type(op)], [a, c])

    def _text(self, value: _Value) -> str:
        return value.tensor if value.kind == "string" else self.b.const([[value.constant]])

    def _member(self, left: _Value, node: ast.AST) -> str:
        if not isinstance(node, ast.List | ast.Tuple) or not all(
            isinstance(e, ast.Constant) for e in node.elts
        ):
            raise NotConvertible("derive: 'in' needs a literal list")
        items: list[Any] = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        if not items:
            raise NotConvertible("derive: 'in' an empty list")
        if left.kind == "string" and all(isinstance(i, str) for i in items):
            x, options = left.tensor, self.b.const([items])
        elif left.kind in ("number", "bool") and all(
            isinstance(i, int | float) and not isinstance(i, str) for i in items
        ):
            x, options = self._number(left), self.b.const([[float(i) for i in items]])
        else:
            raise NotConvertible("derive: 'in' mixes text and numbers")
        hits = self.b.node("Cast", [self.b.node("Equal", [x, options])], to=_DOUBLE)
        most = self.b.node("ReduceMax", [hits, self.b.const(np.array([1], np.int64))], keepdims=1)
        return self.b.node("Cast", [most], to=_BOOL)
