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
QUALITY_STAGES = ("feedback", "live-quality")
"""Live quality: of outcomes received (``feedback.received``), and of the prediction log
(``predictions.logged``)."""
STAGE_NAMES = (
    "ingestion",
    "preparation",
    "training",
    "evaluation",
    "deployment",
    *SCORING_STAGES,
    *QUALITY_STAGES,
    MONITORING_STAGE,
    STREAM_STAGE,
    SCHEDULER_STAGE,
)
# What ``worker --all`` runs: every stage. The ``score:`` triggers acknowledge the events of
# a pipeline whose spec does not score new data without recording anything (``wants``).
ALL_STAGES = STAGE_NAMES
