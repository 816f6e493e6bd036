"""Reports (validation, later drift and evaluation) and the feature-set catalog.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("report_id", _text, primary_key=True),
        sa.Column("kind", _text, nullable=False),
        sa.Column("subject", _text, nullable=False),
        sa.Column("status", _text, nullable=False),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("run_id", _text, nullable=True),
        sa.Column("body", _json, nullable=False),
    )
    op.create_index("ix_reports_created", "reports", ["created_at"])
    op.create_index("ix_reports_subject", "reports", ["subject", "created_at"])
    op.create_index("ix_reports_kind", "reports", ["kind", "created_at"])
    op.create_table(
        "feature_sets",
        sa.Column("feature_set_id", _text, primary_key=True),
        sa.Column("name", _text, nullable=False),
        sa.Column("definition_digest", _text, nullable=False),
        sa.Column("inputs", _json, nullable=False),
        sa.Column("location", _text, nullable=False),
        sa.Column("columns", _json, nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("entity", _text, nullable=True),
        sa.Column("timestamp", _text, nullable=True),
        sa.Column("label", _text, nullable=True),
        sa.Column("pipeline_artifact", _text, nullable=True),
        sa.Column("selection", _json, nullable=False),
        sa.Column("validation_report", _text, nullable=True),
        sa.Column("run_id", _text, nullable=True),
    )
    op.create_index("ix_feature_sets_created", "feature_sets", ["created_at"])
    op.create_index("ix_feature_sets_name", "feature_sets", ["name", "created_at"])


def downgrade() -> None:
    for table in ("feature_sets", "reports"):
        op.drop_table(table)
