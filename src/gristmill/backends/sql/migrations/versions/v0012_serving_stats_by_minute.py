"""Serving stats: an index by minute, so ``gristmill gc`` prunes old minutes and ``gristmill
monitor`` reads a model's last day without reading its whole history.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_serving_stats_window_start", "serving_stats", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_serving_stats_window_start", table_name="serving_stats")
