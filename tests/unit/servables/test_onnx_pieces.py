"""A servable on several threads cuts a call of many rows into pieces, one ONNX Runtime
thread each, and answers exactly as on one thread; a bad value in a piece is the same
``DataError``. A servable unpickled twice in one process opens its sessions once."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
from palmerpenguins import load_penguins

from gristmill.errors import DataError
from gristmill.servables.onnx_servable import PIECE_ROWS, OnnxServable
from gristmill.servables.port import NumericColumns
from gristmill.testing.servables import numeric_servable


@pytest.fixture(scope="module")
def servables() -> tuple[OnnxServable, OnnxServable]:
    return numeric_servable(threads=1), numeric_servable(threads=3)


def _rows(servable: OnnxServable, count: int) -> NumericColumns:
    names = tuple(c.name for c in servable.manifest.inputs)
    birds = load_penguins().dropna(subset=list(names))[list(names)].to_numpy(np.float64)
    rng = np.random.default_rng(3)
    picked = birds[rng.integers(0, len(birds), count)]
    return NumericColumns.of_rows(names, picked * rng.normal(1.0, 0.05, picked.shape))


@pytest.mark.parametrize("count", [5, 2 * PIECE_ROWS + 7, 7 * PIECE_ROWS])
def test_pieces_answer_as_one_thread(
    servables: tuple[OnnxServable, OnnxServable], count: int
) -> None:
    one, three = servables
    rows = _rows(one, count)
    alone, pieced = one.predict(rows), three.predict(rows)
    assert np.array_equal(alone.values, pieced.values)
    assert np.array_equal(alone.probabilities, pieced.probabilities)  # type: ignore[arg-type]
    loose = three.predict(dict(rows))  # one array per column, cut the same way
    assert np.array_equal(alone.probabilities, loose.probabilities)  # type: ignore[arg-type]
    pieces = three._full.pieces
    assert pieces is not None and 1 <= pieces._free.qsize() <= 3  # a session per thread at most


def test_a_bad_value_in_a_piece_is_named(servables: tuple[OnnxServable, OnnxServable]) -> None:
    _, three = servables
    rows = {name: values.copy() for name, values in _rows(three, 3 * PIECE_ROWS).items()}
    name = three.manifest.inputs[0].name
    rows[name][2 * PIECE_ROWS + 1] = np.inf
    with pytest.raises(DataError, match=f"column '{name}' needs finite numbers"):
        three.predict(rows)


def test_a_stored_servable_is_opened_once_per_process() -> None:
    stored = numeric_servable()
    stored = OnnxServable(
        replace(stored.manifest, digest="sha256:test-once"), *stored._graphs[:2], threads=1
    )
    first, second = (pickle.loads(pickle.dumps(stored)) for _ in range(2))
    assert first is second and first is not stored
    other = pickle.loads(pickle.dumps(numeric_servable()))  # no digest: not kept
    assert other is not pickle.loads(pickle.dumps(numeric_servable()))
