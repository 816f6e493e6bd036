"""Traffic policies: per model, which versions answer requests and how (primary, canary, …).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "traffic_policies",
        sa.Column("model", _text, primary_key=True),
        sa.Column("primary", sa.Integer(), nullable=False),
        sa.Column("canary", sa.Integer(), nullable=True),
        sa.Column("canary_share", sa.Float(), nullable=False),
        sa.Column("shadow", _json, nullable=False),
        sa.Column("fallback", _json, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("changed_at", _time, nullable=False),
        sa.Column("changed_by", _text, nullable=False),
        sa.Column("reason", _text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("traffic_policies")
