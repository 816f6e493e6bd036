"""Drift monitoring: each version's drift windows, the log files they took, their alerts.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drift_windows",
        sa.Column("model", _text, primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("window_seconds", sa.Integer(), primary_key=True),
        sa.Column("window_start", _time, primary_key=True),
        sa.Column("window_end", _time, nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("counts", _json, nullable=False),
        sa.Column("results", _json, nullable=False),
        sa.Column("alerted", _json, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", _time, nullable=False),
    )
    op.create_table(
        "drift_files",
        sa.Column("model", _text, primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("file", _text, primary_key=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("taken_at", _time, nullable=False),
        sa.Column("windows", _json, nullable=False),
        sa.Column("execution_id", _text, nullable=True),
    )
    op.create_table(
        "drift_alerts",
        sa.Column("model", _text, primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("window_seconds", sa.Integer(), primary_key=True),
        sa.Column("window_start", _time, primary_key=True),
        sa.Column("column", _text, primary_key=True),
        sa.Column("alert_id", _text, nullable=False),
        sa.Column("method", _text, nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("raised_at", _time, nullable=False),
        sa.Column("file", _text, nullable=False),
        sa.Column("notified_at", _time, nullable=True),
    )
    op.create_index("ix_drift_alerts_id", "drift_alerts", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_drift_alerts_id", table_name="drift_alerts")
    op.drop_table("drift_alerts")
    op.drop_table("drift_files")
    op.drop_table("drift_windows")
