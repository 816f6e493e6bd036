"""Specs travel with runs: pipeline specs by digest, the sources they name; dead letters.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pipeline_specs",
        sa.Column("digest", _text, primary_key=True),
        sa.Column("pipeline", _text, nullable=False),
        sa.Column("body", _json, nullable=False),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("sources", _json, nullable=False),
        sa.Column("folder", _text, nullable=True),
    )
    op.create_table(
        "pipeline_spec_sources",
        sa.Column("source", _text, primary_key=True),
        sa.Column("digest", _text, primary_key=True),
        sa.Column("created_at", _time, nullable=False),
    )
    op.create_index(
        "ix_pipeline_spec_sources_created", "pipeline_spec_sources", ["source", "created_at"]
    )
    op.create_table(
        "dead_letters",
        sa.Column("letter_id", _text, primary_key=True),
        sa.Column("group", _text, nullable=False),
        sa.Column("event_type", _text, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", _text, nullable=False),
        sa.Column("event", _json, nullable=True),
        sa.Column("dead_lettered_at", _time, nullable=False),
        sa.Column("replayed_as", _text, nullable=True),
        sa.Column("replayed_at", _time, nullable=True),
    )
    op.create_index("ix_dead_letters_at", "dead_letters", ["dead_lettered_at"])


def downgrade() -> None:
    for table in ("dead_letters", "pipeline_spec_sources", "pipeline_specs"):
        op.drop_table(table)
