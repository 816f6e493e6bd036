"""The model registry: numbered versions of named models and their aliases.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("model", _text, primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("candidate_id", _text, nullable=False),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("artifact", _text, nullable=True),
        sa.Column("task", _text, nullable=False),
        sa.Column("metrics", _json, nullable=False),
        sa.UniqueConstraint("model", "candidate_id", name="uq_model_versions_candidate"),
    )
    op.create_index("ix_model_versions_created", "model_versions", ["created_at"])
    op.create_table(
        "model_aliases",
        sa.Column("model", _text, primary_key=True),
        sa.Column("alias", _text, primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", _time, nullable=False),
    )


def downgrade() -> None:
    for table in ("model_aliases", "model_versions"):
        op.drop_table(table)
