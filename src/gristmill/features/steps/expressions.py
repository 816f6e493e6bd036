"""Restricted expressions for the ``derive`` and ``filter`` steps: arithmetic, no Python.

An expression is checked before it is ever evaluated: only column names, number, text and
truth constants, arithmetic, comparisons, ``and``/``or``/``not``, ``in`` over a literal list
and a short list of math functions are allowed. Attribute access, indexing, ``@`` local
variables, lambdas, comprehensions and any other call are refused with a ``ConfigError``.
Columns whose names are not identifiers are written in backticks: ```od280/od315` > 2``.
It is then evaluated by ``pandas.DataFrame.eval`` with the pure-Python engine, so a batch and
one row take the same code path.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import pandas as pd

from gristmill.errors import ConfigError, DataError

# The math functions pandas.eval knows (pandas.core.computation.ops.MATHOPS).
FUNCTIONS = frozenset(
    {
        "abs", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh",
        "ceil", "cos", "cosh", "exp", "expm1", "floor", "log", "log10", "log1p", "sin",
        "sinh", "sqrt", "tan", "tanh",
    }
)  # fmt: skip

_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Name, ast.Load,
    ast.Constant, ast.Call, ast.List, ast.Tuple,
    ast.And, ast.Or, ast.Not, ast.Invert, ast.USub, ast.UAdd,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BitAnd, ast.BitOr,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
)  # fmt: skip
_BACKTICKS = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Expression:
    """A checked expression over the columns of a frame; ``columns`` are the names it reads."""

    text: str
    columns: tuple[str, ...]

    @classmethod
    def parse(cls, text: object, *, step: str, option: str) -> Expression:
        """Check ``text``; ``ConfigError`` (naming ``step`` and ``option``) when it is refused."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"step {step!r} option {option!r} must be a non-empty expression")
        quoted: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            quoted.append(match.group(1))
            return f"__column_{len(quoted) - 1}__"

        python = _BACKTICKS.sub(placeholder, text)
        if "@" in python or "`" in python:
            raise ConfigError(
                f"step {step!r} option {option!r}: {text!r} may not use '@' variables or an "
                "unclosed backtick; refer to columns by name (`odd name` in backticks)"
            )
        try:
            tree = ast.parse(python.strip(), mode="eval")
        except SyntaxError as exc:
            raise ConfigError(
                f"step {step!r} option {option!r}: {text!r} is not valid: {exc.msg}"
            ) from exc
        names = _check(tree, text, step=step, option=option)
        columns = {quoted[int(n[9:-2])] if n.startswith("__column_") else n for n in names}
        return cls(text, tuple(sorted(columns)))

    def evaluate(self, frame: pd.DataFrame, *, step: str) -> pd.Series:
        """The expression's value for every row of ``frame``, as a Series on its index."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"step {step!r}: expression {self.text!r} reads column {missing[0]!r}, which the "
                f"data does not have; available: {', '.join(map(str, frame.columns))}",
                column=missing[0],
            )
        try:
            value = frame.eval(self.text, engine="python", local_dict={}, global_dict={})
        except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError) as exc:
            raise DataError(
                f"step {step!r}: expression {self.text!r} failed on the data: {exc}",
                column=self.columns[0] if len(self.columns) == 1 else None,
            ) from exc
        if isinstance(value, pd.Series):
            return value.rename(None)
        return pd.Series([value] * len(frame), index=frame.index)


def _check(tree: ast.AST, text: str, *, step: str, option: str) -> set[str]:
    names: set[str] = set()
    functions: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ConfigError(
                f"step {step!r} option {option!r}: {text!r} uses {type(node).__name__}, which "
                "expressions do not allow (only columns, constants, arithmetic, comparisons, "
                f"and/or/not, 'in' and the functions {', '.join(sorted(FUNCTIONS))})"
            )
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                called = ast.unparse(node.func)
                raise ConfigError(
                    f"step {step!r} option {option!r}: {text!r} calls {called!r}; the functions "
                    f"allowed are {', '.join(sorted(FUNCTIONS))}"
                )
            if node.keywords:
                raise ConfigError(
                    f"step {step!r} option {option!r}: {text!r} passes a keyword argument"
                )
            functions.add(id(node.func))
        elif isinstance(node, ast.Constant) and not isinstance(
            node.value, int | float | str | bool
        ):
            raise ConfigError(
                f"step {step!r} option {option!r}: {text!r} holds the constant {node.value!r}; "
                "only numbers, text, True and False are allowed"
            )
        elif isinstance(node, ast.Name) and id(node) not in functions:
            names.add(node.id)
    return names
