"""JSON request bodies whose text is mostly numbers, read without a Python object per number.

A 1,000-row request sent as columns (``{"columns": {"f0": [...], ...}}``) or as Open
Inference Protocol tensors holds ~20,000 numbers and a handful of strings. orjson makes a
Python ``float`` of each number, which the server then checks (a number, not a boolean or
a text) and copies into an array: ~2 ms of the interpreter's time per request, most of
what such a request costs. ``loads`` reads a large body of that kind with simdjson instead
(pysimdjson: the document parsed in C, then walked lazily) and hands back every long JSON
array of numbers as a float64 array (``as_buffer``: written in C, no Python object per
number), the rest as the same Python values orjson makes. An array holding anything but
numbers (a null, a boolean, a text, an object) comes back as a list, as orjson would make
it, for the protocols to type or refuse value by value, naming the row.

Which parser reads a body changes its speed, never its meaning: a body that simdjson
refuses, or whose text is not mostly numbers (a body of row objects, where every value
has a key in quotes), is read by orjson, and what both read is the same JSON. Numbers
come as float64 either way once they reach the servable; integers above 2**53 lose
precision here as they would there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import simdjson

LARGE = 16_384
"""Bodies smaller than this (bytes) are read by orjson: simdjson's walk costs more there."""

LONG = 64
"""Arrays of numbers with at least this many values become float64 arrays."""

SAMPLE = 4_096
QUOTES_MOST = SAMPLE // 100
"""A body with more double quotes than this in its first and its middle ``SAMPLE`` bytes
is not mostly numbers (counting a whole body's quotes would cost a row body ~0.5 ms)."""


def loads(body: bytes, *, lists: frozenset[str] = frozenset()) -> Any:
    """``body`` as JSON, a long array of numbers of a large, number-heavy body as a float64
    array (see the module docstring), but under a key of ``lists`` (e.g. entity keys, whose
    integers must stay integers); ``orjson.JSONDecodeError`` when it is not JSON."""
    if len(body) < LARGE or _quoted(body):
        return orjson.loads(body)
    try:
        return _walked(body, lists)
    except Exception:  # simdjson refused it, or something it made is not as expected
        return orjson.loads(body)  # which reads it, or says where it is malformed


def _quoted(body: bytes) -> bool:
    middle = len(body) // 2
    return (
        body.count(b'"', 0, SAMPLE) > QUOTES_MOST
        or body.count(b'"', middle, middle + SAMPLE) > QUOTES_MOST
    )


def _walked(body: bytes, lists: frozenset[str]) -> Any:
    """The body walked (a parser per body: one cannot parse again while values of its last
    document live); ``ValueError`` when it holds an array inside an array. ``as_buffer``
    flattens nested arrays, so ``[1, [2], 3]`` would pass for three numbers: every ``[``
    of the text must be an array the walk met (one in a string also makes it give up;
    orjson then reads the body)."""
    walk = _Walk(lists)
    value = walk.value(simdjson.Parser().parse(body))
    if body.count(b"[") != walk.arrays:
        raise ValueError("an array inside an array")
    return value


_ARRAY = simdjson.Array
_OBJECT = simdjson.Object
_NUMBERS = (int, float)


class _Walk:
    """Python values of a simdjson document, long arrays of numbers as float64 blocks."""

    def __init__(self, lists: frozenset[str]) -> None:
        self.lists = lists
        self.arrays = 0  # the arrays met

    def value(self, value: Any) -> Any:
        kind = type(value)
        if kind is _OBJECT:
            keys = list(value.keys())  # items() would convert every value
            read = {
                key: self.value(value[key]) if key not in self.lists else self.plain(value[key])
                for key in keys
            }
            if len(read) != len(keys) or any("\x00" in key for key in keys):
                # a key given twice (orjson keeps the last, a lookup here finds the first),
                # or holding NUL (which a lookup here cuts short): orjson reads the body
                raise ValueError("a key simdjson's lookup would not find as orjson does")
            return read
        if kind is not _ARRAY:
            return value
        self.arrays += 1
        size = len(value)
        if not size:
            return []
        first = type(value[0])
        if first in _NUMBERS and size >= LONG:
            try:
                return np.frombuffer(value.as_buffer(of_type="d"), dtype=np.float64)
            except (TypeError, ValueError):  # a value that is not a number: a list, below
                return value.as_list()
        if first is _OBJECT and size < LONG:  # e.g. a request's tensors
            return [self.value(value[i]) for i in range(size)]
        return value.as_list()  # made in C: short, or of texts, or many row objects

    def plain(self, value: Any) -> Any:
        """``value`` as orjson makes it (no block)."""
        if type(value) is _ARRAY:
            self.arrays += 1
            return value.as_list()
        return self.value(value)
