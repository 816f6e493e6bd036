"""Segregation: train / validation / test subsets of a feature set, with manifest and warnings."""

from gristmill.segregation.diagnostics import Thresholds
from gristmill.segregation.membership import keyed_membership, membership_keys, positions_by_key
from gristmill.segregation.result import (
    SUBSETS,
    SplitResult,
    SplitWarning,
    Subset,
    WarningKind,
    membership_table,
    warnings_and_notes,
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
    "keyed_membership",
    "known_strategies",
    "membership_keys",
    "membership_table",
    "positions_by_key",
    "split",
    "split_id",
    "warnings_and_notes",
]
