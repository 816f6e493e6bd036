"""Tallies: JSON values of counts and sums that add up (nested objects, lists of numbers).

What is summed piece by piece and stored as JSON (an estimate's sums per window, kept by
the metadata store) is added with ``added``: objects key by key, lists item by item,
numbers as numbers; a key or item one side lacks counts as zero.
"""

from __future__ import annotations

from typing import Any


def added(left: Any, right: Any) -> Any:
    """``left + right`` as tallies (see the module docstring); ``TypeError`` when their
    shapes differ (an object against a number)."""
    if left is None:
        return right
    if right is None:
        return left
    if isinstance(left, dict) and isinstance(right, dict):
        return {key: added(left.get(key), right.get(key)) for key in {**left, **right}}
    if isinstance(left, list) and isinstance(right, list):
        longer, shorter = (left, right) if len(left) >= len(right) else (right, left)
        return [added(a, shorter[i] if i < len(shorter) else None) for i, a in enumerate(longer)]
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        if isinstance(left, bool) or isinstance(right, bool):
            raise TypeError("tallies hold numbers, not true/false")
        return left + right
    shapes = f"{type(left).__name__} and {type(right).__name__}"
    raise TypeError(f"cannot add tallies of shapes {shapes}")
