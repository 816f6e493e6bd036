"""Frames for the step tests: palmerpenguins and scikit-learn's bundled datasets (no downloads)."""

from __future__ import annotations

import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.datasets import load_diabetes, load_wine


@pytest.fixture
def penguins() -> pd.DataFrame:
    """344 penguins: text columns with gaps (sex), float columns with gaps, an int year."""
    return load_penguins()


@pytest.fixture
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


@pytest.fixture
def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame
