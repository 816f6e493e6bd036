"""Point-in-time joins of several inputs: a row never sees a value stamped after it."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from gristmill.errors import ConfigError, DataError
from gristmill.features.join import join_inputs


def ts(day: int) -> datetime:
    return datetime(2026, 1, day)


ORDERS = pa.table(
    {
        "customer": ["a", "b", "a", "c", "b"],
        "ts": [ts(5), ts(2), ts(1), ts(9), ts(8)],
        "amount": [10.0, 20.0, 30.0, 40.0, 50.0],
    }
)
PROFILES = pa.table(
    {
        "customer": ["a", "a", "b", "b"],
        "ts": [ts(1), ts(4), ts(3), ts(6)],
        "tier": ["bronze", "gold", "silver", "platinum"],
        "amount": [1.0, 2.0, 3.0, 4.0],
    }
)


def test_as_of_join_takes_the_newest_value_not_after_the_row() -> None:
    joined = join_inputs({"orders": ORDERS, "profiles": PROFILES}, on="customer", timestamp="ts")
    assert joined.column_names == ["customer", "ts", "amount", "tier", "profiles__amount"]
    assert joined.column("amount").to_pylist() == [10.0, 20.0, 30.0, 40.0, 50.0]  # spine order
    # a@5 -> gold (stamped 4); b@2 -> nothing yet (3 is later); a@1 -> bronze (same instant);
    # c -> no profile at all; b@8 -> platinum (6)
    assert joined.column("tier").to_pylist() == ["gold", None, "bronze", None, "platinum"]


def test_exact_join_without_time() -> None:
    latest = pa.table({"customer": ["a", "b"], "segment": ["x", "y"]})
    joined = join_inputs(
        {"orders": ORDERS, "segments": latest}, on="customer", timestamp=None, how="exact"
    )
    assert joined.column("segment").to_pylist() == ["x", "y", "x", None, "y"]


def test_a_missing_key_column_is_named() -> None:
    with pytest.raises(DataError, match="input 'profiles' has no column 'client'"):
        join_inputs(
            {"orders": ORDERS.rename_columns(["client", "ts", "amount"]), "profiles": PROFILES},
            on="client",
            timestamp="ts",
        )


def test_as_of_needs_a_timestamp() -> None:
    with pytest.raises(ConfigError, match="needs 'timestamp'"):
        join_inputs({"orders": ORDERS, "profiles": PROFILES}, on="customer", timestamp=None)
