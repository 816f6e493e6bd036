"""Schedules: the pipelines' schedules, and each tick claimed once (its outbox beside it).

Revision ID: 0011
Revises: 0010 (the serving stats, made on branch i10-canary at the same time). Merge that
branch first; on a tree without 0010 this revision would follow 0009.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("key", _text, primary_key=True),
        sa.Column("pipeline", _text, nullable=False),
        sa.Column("action", _text, nullable=False),
        sa.Column("target", _text, nullable=False),
        sa.Column("timing", _text, nullable=False),
        sa.Column("spec_digest", _text, nullable=False),
        sa.Column("since", _time, nullable=False),
        sa.Column("model", _text, nullable=True),
    )
    op.create_index("ix_schedules_pipeline", "schedules", ["pipeline"])
    op.create_table(
        "schedule_ticks",
        sa.Column("key", _text, primary_key=True),
        sa.Column("tick_at", _time, primary_key=True),
        sa.Column("fired_at", _time, nullable=False),
        sa.Column("holder", _text, nullable=False),
        sa.Column("outcome", _text, nullable=False),
        sa.Column("detail", _text, nullable=False),
        sa.Column("input", _text, nullable=True),
        sa.Column("model", _text, nullable=True),
        sa.Column("ref", _text, nullable=True),
        sa.Column("events", _json, nullable=False),
        sa.Column("published_at", _time, nullable=True),
    )
    op.create_index("ix_schedule_ticks_unpublished", "schedule_ticks", ["published_at", "fired_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_ticks_unpublished", table_name="schedule_ticks")
    op.drop_table("schedule_ticks")
    op.drop_index("ix_schedules_pipeline", table_name="schedules")
    op.drop_table("schedules")
