"""Split manifests and model candidates (the segregation and training records).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "splits",
        sa.Column("split_id", _text, primary_key=True),
        sa.Column("feature_set_id", _text, nullable=False),
        sa.Column("strategy", _text, nullable=False),
        sa.Column("params", _json, nullable=False),
        sa.Column("sizes", _json, nullable=False),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("membership", _text, nullable=True),
        sa.Column("warnings", _json, nullable=False),
        sa.Column("run_id", _text, nullable=True),
    )
    op.create_index("ix_splits_feature_set", "splits", ["feature_set_id", "created_at"])
    op.create_table(
        "candidates",
        sa.Column("candidate_id", _text, primary_key=True),
        sa.Column("name", _text, nullable=False),
        sa.Column("algorithm", _text, nullable=False),
        sa.Column("task", _text, nullable=False),
        sa.Column("params", _json, nullable=False),
        sa.Column("feature_set_id", _text, nullable=False),
        sa.Column("split_id", _text, nullable=False),
        sa.Column("status", _text, nullable=False),
        sa.Column("started_at", _time, nullable=False),
        sa.Column("finished_at", _time, nullable=True),
        sa.Column("artifact", _text, nullable=True),
        sa.Column("learned", _json, nullable=False),
        sa.Column("metrics", _json, nullable=False),
        sa.Column("tuning", _json, nullable=False),
        sa.Column("versions", _json, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", _text, nullable=True),
        sa.Column("run_id", _text, nullable=True),
    )
    op.create_index("ix_candidates_started", "candidates", ["started_at"])
    op.create_index("ix_candidates_run", "candidates", ["run_id", "started_at"])
    op.create_index("ix_candidates_feature_set", "candidates", ["feature_set_id", "started_at"])


def downgrade() -> None:
    for table in ("candidates", "splits"):
        op.drop_table(table)
