"""The event types the stages announce and consume, as names (``raw.ingested``…).

Kept apart from the envelope (``core.events``, a pydantic model that makes ids), so what
only names event types — reading how a run stands, printing a summary — loads neither.
"""

from __future__ import annotations

# Event types are past-tense facts. These are the ones the stages built so far announce or
# consume; stages may define more.
SOURCE_AVAILABLE = "source.available"
RAW_INGESTED = "raw.ingested"
RECORDS_APPENDED = "records.appended"
FEATURES_GENERATED = "features.generated"
DATA_ANOMALOUS = "data.anomalous"
MODEL_TRAINED = "model.trained"
MODEL_EVALUATED = "model.evaluated"
MODEL_DEPLOYED = "model.deployed"  # an alias or the traffic policy of a model changed (key: it)
MODEL_ROLLED_BACK = "model.rolled_back"  # a model's traffic went back to @previous (key: it)
SCORES_REQUESTED = "scores.requested"  # a batch score job was asked for (key: the model)
SCORES_READY = "scores.ready"  # a batch score job's scores are committed (key: the model)
PREDICTIONS_LOGGED = "predictions.logged"  # a batch of the prediction log was written
FEEDBACK_RECEIVED = "feedback.received"  # actual outcomes of served predictions (core.feedback)
MONITOR_ALERT = "monitor.alert"  # monitoring found a crossing (drift: a column in a window)
STAGE_FAILED = "stage.failed"  # a stage gave up on an event (its error in the payload)
