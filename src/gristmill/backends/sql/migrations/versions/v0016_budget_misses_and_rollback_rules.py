"""Latency budget misses in the serving stats; a rollback rule on traffic policies.

Revision ID: 0016
Revises: 0015 (the head when it was written; the migrations made at the same time on other
branches are chained before it at merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _schema() -> str | None:
    # ALTER TABLE does not go through the connection's schema_translate_map (CREATE does):
    # name the schema the runner migrates (the version table's) explicitly.
    schema = op.get_context().opts.get("version_table_schema")
    return None if schema is None else str(schema)


def upgrade() -> None:
    schema = _schema()
    # rows recorded before knew of no miss: 0
    op.add_column(
        "serving_stats",
        sa.Column("budget_misses", sa.BigInteger(), nullable=False, server_default="0"),
        schema=schema,
    )
    op.add_column("traffic_policies", sa.Column("rollback_rule", _json), schema=schema)


def downgrade() -> None:
    schema = _schema()
    with op.batch_alter_table("traffic_policies", schema=schema) as table:
        table.drop_column("rollback_rule")
    with op.batch_alter_table("serving_stats", schema=schema) as table:
        table.drop_column("budget_misses")
