"""The metadata store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Column names equal the domain dataclasses' field names, so a row maps to its object by
name. Tables carry no schema: a PostgreSQL schema is applied per connection with
``schema_translate_map``. This is the *current* shape the adapters query; the migrations in
``migrations/versions`` build it step by step (a test checks that the two agree).

No foreign keys: runs, executions, batches, reports, feature sets, splits, candidates,
model versions and lineage refer to one another by ids that may come from elsewhere (an event's
``correlation_id``, a node of any kind).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

# Unbounded strings: PostgreSQL ``varchar`` without a length is ``text``; lengths would make
# the two backends disagree on what they accept.
Text = sa.String()

# JSONB on PostgreSQL (indexable, compact); JSON text elsewhere.
JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC and always returned aware in UTC.

    SQLite keeps no offset, so values are written as naive UTC and the zone is restored on
    the way out. Naive datetimes are refused: their meaning depends on the writer's clock.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to the metadata store; "
                "use a timezone-aware one, e.g. datetime.now(UTC)"
            )
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData()


runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", Text, primary_key=True),
    sa.Column("pipeline", Text, nullable=False),
    sa.Column("status", Text, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("spec_digest", Text, nullable=False),
    sa.Column("summary", JsonType, nullable=False),
    sa.Index("ix_runs_started_at", "started_at"),
)

stage_executions = sa.Table(
    "stage_executions",
    metadata,
    sa.Column("execution_id", Text, primary_key=True),
    sa.Column("stage", Text, nullable=False),
    sa.Column("idempotency_key", Text, nullable=False),
    sa.Column("status", Text, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("run_id", Text, nullable=True),
    sa.Column("input_event_id", Text, nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("outputs", JsonType, nullable=False),
    sa.Column("error", Text, nullable=True),
    sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
    sa.Column("holder", Text, nullable=True),
    sa.Column("published_at", UtcDateTime(), nullable=True),
    sa.Index("ix_stage_executions_key", "stage", "idempotency_key", "started_at"),
    sa.Index("ix_stage_executions_run", "run_id", "started_at"),
    sa.Index("ix_stage_executions_lease", "status", "lease_expires_at"),
    sa.Index("ix_stage_executions_unpublished", "stage", "published_at"),
)

lineage_edges = sa.Table(
    "lineage_edges",
    metadata,
    sa.Column("parent_id", Text, primary_key=True),
    sa.Column("child_id", Text, primary_key=True),
    sa.Column("relation", Text, primary_key=True),
    sa.Column("parent_kind", Text, nullable=False),
    sa.Column("child_kind", Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index("ix_lineage_edges_child", "child_id"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("entry_id", Text, primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", Text, nullable=False),
    sa.Column("action", Text, nullable=False),
    sa.Column("subject", Text, nullable=False),
    sa.Column("details", JsonType, nullable=False),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_subject", "subject", "at"),
)

raw_batches = sa.Table(
    "raw_batches",
    metadata,
    sa.Column("batch_id", Text, primary_key=True),
    sa.Column("source", Text, nullable=False),
    sa.Column("location", Text, nullable=False),
    sa.Column("files", JsonType, nullable=False),
    sa.Column("schema", JsonType, nullable=False),
    sa.Column("schema_fingerprint", Text, nullable=False),
    sa.Column("row_count", sa.BigInteger(), nullable=False),
    sa.Column("content_digest", Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("origin", Text, nullable=False),
    sa.Column("run_id", Text, nullable=True),
    sa.Column("quarantine", Text, nullable=True),
    sa.Column("bad_rows", sa.BigInteger(), nullable=False),
    sa.Column("extra", JsonType, nullable=False),
    sa.UniqueConstraint("source", "content_digest", name="uq_raw_batches_source_digest"),
    sa.Index("ix_raw_batches_created", "created_at"),
    sa.Index("ix_raw_batches_source", "source", "created_at"),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("report_id", Text, primary_key=True),
    sa.Column("kind", Text, nullable=False),
    sa.Column("subject", Text, nullable=False),
    sa.Column("status", Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("run_id", Text, nullable=True),
    sa.Column("body", JsonType, nullable=False),
    sa.Index("ix_reports_created", "created_at"),
    sa.Index("ix_reports_subject", "subject", "created_at"),
    sa.Index("ix_reports_kind", "kind", "created_at"),
)

feature_sets = sa.Table(
    "feature_sets",
    metadata,
    sa.Column("feature_set_id", Text, primary_key=True),
    sa.Column("name", Text, nullable=False),
    sa.Column("definition_digest", Text, nullable=False),
    sa.Column("inputs", JsonType, nullable=False),
    sa.Column("location", Text, nullable=False),
    sa.Column("columns", JsonType, nullable=False),
    sa.Column("row_count", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("entity", Text, nullable=True),
    sa.Column("timestamp", Text, nullable=True),
    sa.Column("label", Text, nullable=True),
    sa.Column("pipeline_artifact", Text, nullable=True),
    sa.Column("selection", JsonType, nullable=False),
    sa.Column("validation_report", Text, nullable=True),
    sa.Column("run_id", Text, nullable=True),
    sa.Index("ix_feature_sets_created", "created_at"),
    sa.Index("ix_feature_sets_name", "name", "created_at"),
)

splits = sa.Table(
    "splits",
    metadata,
    sa.Column("split_id", Text, primary_key=True),
    sa.Column("feature_set_id", Text, nullable=False),
    sa.Column("strategy", Text, nullable=False),
    sa.Column("params", JsonType, nullable=False),
    sa.Column("sizes", JsonType, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("membership", Text, nullable=True),
    sa.Column("warnings", JsonType, nullable=False),
    sa.Column("run_id", Text, nullable=True),
    sa.Index("ix_splits_feature_set", "feature_set_id", "created_at"),
)

candidates = sa.Table(
    "candidates",
    metadata,
    sa.Column("candidate_id", Text, primary_key=True),
    sa.Column("name", Text, nullable=False),
    sa.Column("algorithm", Text, nullable=False),
    sa.Column("task", Text, nullable=False),
    sa.Column("params", JsonType, nullable=False),
    sa.Column("feature_set_id", Text, nullable=False),
    sa.Column("split_id", Text, nullable=False),
    sa.Column("status", Text, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("artifact", Text, nullable=True),
    sa.Column("learned", JsonType, nullable=False),
    sa.Column("metrics", JsonType, nullable=False),
    sa.Column("tuning", JsonType, nullable=False),
    sa.Column("versions", JsonType, nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("error", Text, nullable=True),
    sa.Column("run_id", Text, nullable=True),
    sa.Index("ix_candidates_started", "started_at"),
    sa.Index("ix_candidates_run", "run_id", "started_at"),
    sa.Index("ix_candidates_feature_set", "feature_set_id", "started_at"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("model", Text, primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("candidate_id", Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("artifact", Text, nullable=True),
    sa.Column("task", Text, nullable=False),
    sa.Column("metrics", JsonType, nullable=False),
    # A candidate is one version of a model at most; racing registrations of it collide here.
    sa.UniqueConstraint("model", "candidate_id", name="uq_model_versions_candidate"),
    sa.Index("ix_model_versions_created", "created_at"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model", Text, primary_key=True),
    sa.Column("alias", Text, primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# One row per model whose traffic policy was set; the history is in the audit log.
traffic_policies = sa.Table(
    "traffic_policies",
    metadata,
    sa.Column("model", Text, primary_key=True),
    sa.Column("primary", sa.Integer(), nullable=False),
    sa.Column("canary", sa.Integer(), nullable=True),
    sa.Column("canary_share", sa.Float(), nullable=False),
    sa.Column("shadow", JsonType, nullable=False),
    sa.Column("fallback", JsonType, nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("changed_at", UtcDateTime(), nullable=False),
    sa.Column("changed_by", Text, nullable=False),
    sa.Column("reason", Text, nullable=False),
    sa.Column("promote_after_requests", sa.Integer(), nullable=True),
    sa.Column("promote_after_minutes", sa.Float(), nullable=True),
    sa.Column("canary_since", UtcDateTime(), nullable=True),
    sa.Column("canary_revision", sa.Integer(), nullable=True),
    sa.Column("rollback_rule", JsonType, nullable=True),
)

pipeline_specs = sa.Table(
    "pipeline_specs",
    metadata,
    sa.Column("digest", Text, primary_key=True),
    sa.Column("pipeline", Text, nullable=False),
    sa.Column("body", JsonType, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("sources", JsonType, nullable=False),
    sa.Column("folder", Text, nullable=True),
)

# Which specs name a source: how an event outside any run finds its spec.
pipeline_spec_sources = sa.Table(
    "pipeline_spec_sources",
    metadata,
    sa.Column("source", Text, primary_key=True),
    sa.Column("digest", Text, primary_key=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index("ix_pipeline_spec_sources_created", "source", "created_at"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("letter_id", Text, primary_key=True),
    sa.Column("group", Text, nullable=False),
    sa.Column("event_type", Text, nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("error", Text, nullable=False),
    sa.Column("event", JsonType, nullable=True),
    sa.Column("dead_lettered_at", UtcDateTime(), nullable=False),
    sa.Column("replayed_as", Text, nullable=True),
    sa.Column("replayed_at", UtcDateTime(), nullable=True),
    sa.Index("ix_dead_letters_at", "dead_lettered_at"),
)

score_jobs = sa.Table(
    "score_jobs",
    metadata,
    sa.Column("job_id", Text, primary_key=True),
    sa.Column("model", Text, nullable=False),
    sa.Column("input", Text, nullable=False),
    sa.Column("state", Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=True),
    sa.Column("input_kind", Text, nullable=True),
    sa.Column("partitions_total", sa.Integer(), nullable=False),
    sa.Column("partitions_done", sa.Integer(), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("bad_rows", sa.BigInteger(), nullable=False),
    sa.Column("errors", JsonType, nullable=False),
    sa.Column("location", Text, nullable=True),
    sa.Column("webhook", Text, nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("error", Text, nullable=True),
    sa.Index("ix_score_jobs_created", "created_at"),
)

# One server process's running totals for one model version in one minute (0010; by minute: 0012).
serving_stats = sa.Table(
    "serving_stats",
    metadata,
    sa.Column("model", Text, primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("window_start", UtcDateTime(), primary_key=True),
    sa.Column("replica", Text, primary_key=True),
    sa.Column("revision", sa.Integer(), primary_key=True),
    sa.Column("requests", sa.BigInteger(), nullable=False),
    sa.Column("errors", sa.BigInteger(), nullable=False),
    sa.Column("client_errors", sa.BigInteger(), nullable=False),
    sa.Column("fallbacks", sa.BigInteger(), nullable=False),
    sa.Column("budget_misses", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("cache_hits", sa.BigInteger(), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("latency_sum", sa.Float(), nullable=False),
    sa.Column("latency_min", sa.Float(), nullable=True),
    sa.Column("latency_max", sa.Float(), nullable=True),
    sa.Column("latency_buckets", JsonType, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_serving_stats_window_start", "window_start"),
)

# The pipelines' schedules (one row each; a spec recorded replaces its pipeline's rows).
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("key", Text, primary_key=True),
    sa.Column("pipeline", Text, nullable=False),
    sa.Column("action", Text, nullable=False),
    sa.Column("target", Text, nullable=False),
    sa.Column("timing", Text, nullable=False),
    sa.Column("spec_digest", Text, nullable=False),
    sa.Column("since", UtcDateTime(), nullable=False),
    sa.Column("model", Text, nullable=True),
    sa.Index("ix_schedules_pipeline", "pipeline"),
)

# Each tick claimed once: the primary key is the claim; ``events`` and ``published_at`` its
# outbox.
schedule_ticks = sa.Table(
    "schedule_ticks",
    metadata,
    sa.Column("key", Text, primary_key=True),
    sa.Column("tick_at", UtcDateTime(), primary_key=True),
    sa.Column("fired_at", UtcDateTime(), nullable=False),
    sa.Column("holder", Text, nullable=False),
    sa.Column("outcome", Text, nullable=False),
    sa.Column("detail", Text, nullable=False),
    sa.Column("input", Text, nullable=True),
    sa.Column("model", Text, nullable=True),
    sa.Column("ref", Text, nullable=True),
    sa.Column("events", JsonType, nullable=False),
    sa.Column("published_at", UtcDateTime(), nullable=True),
    sa.Index("ix_schedule_ticks_unpublished", "published_at", "fired_at"),
)

# A JSON value that may be absent: SQL NULL (not JSON null), so ``IS NULL`` finds it.
NullableJson = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)

# Actual outcomes as feedback carried them, once per event and place (0014).
feedback_outcomes = sa.Table(
    "feedback_outcomes",
    metadata,
    sa.Column("feedback_id", Text, primary_key=True),
    sa.Column("position", sa.Integer(), primary_key=True),
    sa.Column("actual", JsonType, nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("request_id", Text, nullable=True),
    sa.Column("row", sa.Integer(), nullable=False),
    sa.Column("model", Text, nullable=True),
    sa.Column("entity", Text, nullable=True),
    sa.Column("entity_at", UtcDateTime(), nullable=True),
    sa.Column("status", Text, nullable=False),
    sa.Column("joined_model", Text, nullable=True),
    sa.Index("ix_feedback_outcomes_request", "request_id", "row"),
    sa.Index("ix_feedback_outcomes_entity", "model", "entity", "status"),
)

# Rows of the prediction log, with the actual value that won their join (0014).
logged_predictions = sa.Table(
    "logged_predictions",
    metadata,
    sa.Column("request_id", Text, primary_key=True),
    sa.Column("row", sa.Integer(), primary_key=True),
    sa.Column("model", Text, primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("window_seconds", sa.Integer(), nullable=False),
    sa.Column("window_start", UtcDateTime(), nullable=False),
    sa.Column("prediction", NullableJson, nullable=True),
    sa.Column("probabilities", NullableJson, nullable=True),
    sa.Column("entity", Text, nullable=True),
    sa.Column("shadow", sa.Boolean(), nullable=False),
    sa.Column("actual", NullableJson, nullable=True),
    sa.Column("actual_order", Text, nullable=True),
    sa.Column("outcomes", sa.Integer(), nullable=False),
    sa.Column("late", sa.Boolean(), nullable=False),
    sa.Index("ix_logged_predictions_entity", "model", "entity", "at"),
    sa.Index("ix_logged_predictions_window", "model", "version", "window_seconds", "window_start"),
)

# The prediction log's files recorded, each once (0014).
logged_sources = sa.Table(
    "logged_sources",
    metadata,
    sa.Column("source", Text, primary_key=True),
    sa.Column("model", Text, nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("rows", sa.Integer(), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
)

# Live quality per version and window: logged rows, estimate sums, measured figures (0014).
quality_windows = sa.Table(
    "quality_windows",
    metadata,
    sa.Column("model", Text, primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("window_seconds", sa.Integer(), primary_key=True),
    sa.Column("window_start", UtcDateTime(), primary_key=True),
    sa.Column("predictions", sa.BigInteger(), nullable=False),
    sa.Column("classes", JsonType, nullable=False),
    sa.Column("estimate", JsonType, nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("measured_revision", sa.Integer(), nullable=False),
    sa.Column("labelled", sa.Integer(), nullable=False),
    sa.Column("duplicates", sa.Integer(), nullable=False),
    sa.Column("late", sa.Integer(), nullable=False),
    sa.Column("unusable", sa.Integer(), nullable=False),
    sa.Column("metrics", JsonType, nullable=False),
    sa.Column("estimate_error", JsonType, nullable=False),
    sa.Column("measured_at", UtcDateTime(), nullable=True),
    sa.Index("ix_quality_windows_unmeasured", "measured_revision", "revision"),
)

# A model version's drift window: what its log files added up to, and the drift judged from
# it (0015). ``window_end`` is kept beside ``window_start`` so "ends after" is one compare.
drift_windows = sa.Table(
    "drift_windows",
    metadata,
    sa.Column("model", Text, primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("window_seconds", sa.Integer(), primary_key=True),
    sa.Column("window_start", UtcDateTime(), primary_key=True),
    sa.Column("window_end", UtcDateTime(), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("files", sa.Integer(), nullable=False),
    sa.Column("counts", JsonType, nullable=False),
    sa.Column("results", JsonType, nullable=False),
    sa.Column("alerted", JsonType, nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# The prediction log files counted into drift windows: the primary key is the exactly-once.
drift_files = sa.Table(
    "drift_files",
    metadata,
    sa.Column("model", Text, primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("file", Text, primary_key=True),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("taken_at", UtcDateTime(), nullable=False),
    sa.Column("windows", JsonType, nullable=False),
    sa.Column("execution_id", Text, nullable=True),
)

# One alert per version, window and column that crossed its threshold.
drift_alerts = sa.Table(
    "drift_alerts",
    metadata,
    sa.Column("model", Text, primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("window_seconds", sa.Integer(), primary_key=True),
    sa.Column("window_start", UtcDateTime(), primary_key=True),
    sa.Column("column", Text, primary_key=True),
    sa.Column("alert_id", Text, nullable=False),
    sa.Column("method", Text, nullable=False),
    sa.Column("statistic", sa.Float(), nullable=False),
    sa.Column("threshold", sa.Float(), nullable=False),
    sa.Column("p_value", sa.Float(), nullable=True),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("raised_at", UtcDateTime(), nullable=False),
    sa.Column("file", Text, nullable=False),
    sa.Column("notified_at", UtcDateTime(), nullable=True),
    sa.Index("ix_drift_alerts_id", "alert_id"),
)
