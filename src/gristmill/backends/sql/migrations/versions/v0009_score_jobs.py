"""Batch score jobs: their state, progress and where their scores are.

Revision ID: 0009
Revises: 0007 (0008, the deployment policies, is made on another branch: when both are
merged this revision follows 0008 instead)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "score_jobs",
        sa.Column("job_id", _text, primary_key=True),
        sa.Column("model", _text, nullable=False),
        sa.Column("input", _text, nullable=False),
        sa.Column("state", _text, nullable=False),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("input_kind", _text, nullable=True),
        sa.Column("partitions_total", sa.Integer(), nullable=False),
        sa.Column("partitions_done", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bad_rows", sa.BigInteger(), nullable=False),
        sa.Column("errors", _json, nullable=False),
        sa.Column("location", _text, nullable=True),
        sa.Column("webhook", _text, nullable=True),
        sa.Column("started_at", _time, nullable=True),
        sa.Column("finished_at", _time, nullable=True),
        sa.Column("error", _text, nullable=True),
    )
    op.create_index("ix_score_jobs_created", "score_jobs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_score_jobs_created", table_name="score_jobs")
    op.drop_table("score_jobs")
