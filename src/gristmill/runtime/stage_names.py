"""The names of the stages this build runs as workers, and which ``worker --all`` runs.

Names only, with no import: the CLI's help lists them without importing the stages (and
the learning libraries they bring); ``runtime.stages`` builds the workers of these names.
"""

from __future__ import annotations

STREAM_STAGE = "stream-ingestion"
SCHEDULER_STAGE = "scheduler"
MONITORING_STAGE = "monitoring"
SCORE_TRIGGERS = ("scoring-batches", "scoring-features")
SCORING_STAGES = ("scoring", *SCORE_TRIGGERS)
STAGE_NAMES = (
    "ingestion",
    "preparation",
    "training",
    "evaluation",
    "deployment",
    *SCORING_STAGES,
    MONITORING_STAGE,
    STREAM_STAGE,
    SCHEDULER_STAGE,
)
# What ``worker --all`` runs: every stage but the ``score:`` triggers, which would record an
# execution for every raw batch and feature set of every pipeline; a deployment that scores
# new data runs them by name (``gristmill run`` does when its spec has ``score:``).
ALL_STAGES = tuple(name for name in STAGE_NAMES if name not in SCORE_TRIGGERS)
