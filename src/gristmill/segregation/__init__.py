"""Segregation: train / validation / test subsets of a feature set, with manifest and warnings."""

from gristmill.segregation.diagnostics import Thresholds
from gristmill.segregation.result import (
    SUBSETS,
    SplitResult,
    SplitWarning,
    Subset,
    WarningKind,
    membership_table,
)
from gristmill.segregation.splitting import split, split_id
from gristmill.segregation.strategies import CustomSplit, known_strategies

__all__ = [
    "SUBSETS",
    "CustomSplit",
    "SplitResult",
    "SplitWarning",
    "Subset",
    "Thresholds",
    "WarningKind",
    "known_strategies",
    "membership_table",
    "split",
    "split_id",
]
