"""Feedback: actual outcomes, the logged predictions they join, live quality windows.

Revision ID: 0014
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_json_or_null = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback_outcomes",
        sa.Column("feedback_id", _text, primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("actual", _json, nullable=False),
        sa.Column("received_at", _time, nullable=False),
        sa.Column("request_id", _text, nullable=True),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("model", _text, nullable=True),
        sa.Column("entity", _text, nullable=True),
        sa.Column("entity_at", _time, nullable=True),
        sa.Column("status", _text, nullable=False),
        sa.Column("joined_model", _text, nullable=True),
    )
    op.create_index("ix_feedback_outcomes_request", "feedback_outcomes", ["request_id", "row"])
    op.create_index(
        "ix_feedback_outcomes_entity", "feedback_outcomes", ["model", "entity", "status"]
    )
    op.create_table(
        "logged_predictions",
        sa.Column("request_id", _text, primary_key=True),
        sa.Column("row", sa.Integer(), primary_key=True),
        sa.Column("model", _text, primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("at", _time, nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.Column("window_start", _time, nullable=False),
        sa.Column("prediction", _json_or_null, nullable=True),
        sa.Column("probabilities", _json_or_null, nullable=True),
        sa.Column("entity", _text, nullable=True),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("actual", _json_or_null, nullable=True),
        sa.Column("actual_order", _text, nullable=True),
        sa.Column("outcomes", sa.Integer(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_logged_predictions_entity", "logged_predictions", ["model", "entity", "at"])
    op.create_index(
        "ix_logged_predictions_window",
        "logged_predictions",
        ["model", "version", "window_seconds", "window_start"],
    )
    op.create_table(
        "logged_sources",
        sa.Column("source", _text, primary_key=True),
        sa.Column("model", _text, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("recorded_at", _time, nullable=False),
    )
    op.create_table(
        "quality_windows",
        sa.Column("model", _text, primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("window_seconds", sa.Integer(), primary_key=True),
        sa.Column("window_start", _time, primary_key=True),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("classes", _json, nullable=False),
        sa.Column("estimate", _json, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("measured_revision", sa.Integer(), nullable=False),
        sa.Column("labelled", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("unusable", sa.Integer(), nullable=False),
        sa.Column("metrics", _json, nullable=False),
        sa.Column("estimate_error", _json, nullable=False),
        sa.Column("measured_at", _time, nullable=True),
    )
    op.create_index(
        "ix_quality_windows_unmeasured", "quality_windows", ["measured_revision", "revision"]
    )


def downgrade() -> None:
    op.drop_index("ix_quality_windows_unmeasured", table_name="quality_windows")
    op.drop_table("quality_windows")
    op.drop_table("logged_sources")
    op.drop_index("ix_logged_predictions_window", table_name="logged_predictions")
    op.drop_index("ix_logged_predictions_entity", table_name="logged_predictions")
    op.drop_table("logged_predictions")
    op.drop_index("ix_feedback_outcomes_entity", table_name="feedback_outcomes")
    op.drop_index("ix_feedback_outcomes_request", table_name="feedback_outcomes")
    op.drop_table("feedback_outcomes")
