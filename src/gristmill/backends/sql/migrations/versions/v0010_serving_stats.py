"""Serving stats per version, replica and minute; canary promotion rules on traffic policies.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)
_count = sa.BigInteger()


def _schema() -> str | None:
    # ALTER TABLE does not go through the connection's schema_translate_map (CREATE does):
    # name the schema the runner migrates (the version table's) explicitly.
    schema = op.get_context().opts.get("version_table_schema")
    return None if schema is None else str(schema)


def upgrade() -> None:
    op.create_table(
        "serving_stats",
        sa.Column("model", _text, primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("window_start", _time, primary_key=True),
        sa.Column("replica", _text, primary_key=True),
        sa.Column("revision", sa.Integer(), primary_key=True),
        sa.Column("requests", _count, nullable=False),
        sa.Column("errors", _count, nullable=False),
        sa.Column("client_errors", _count, nullable=False),
        sa.Column("fallbacks", _count, nullable=False),
        sa.Column("cache_hits", _count, nullable=False),
        sa.Column("rows", _count, nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("latency_min", sa.Float(), nullable=True),
        sa.Column("latency_max", sa.Float(), nullable=True),
        sa.Column("latency_buckets", _json, nullable=False),
        sa.Column("updated_at", _time, nullable=False),
    )
    schema = _schema()
    for column in (
        sa.Column("promote_after_requests", sa.Integer(), nullable=True),
        sa.Column("promote_after_minutes", sa.Float(), nullable=True),
        sa.Column("canary_since", _time, nullable=True),
        sa.Column("canary_revision", sa.Integer(), nullable=True),
    ):
        op.add_column("traffic_policies", column, schema=schema)
    # A canary that runs already started, as far as anyone knows, when its policy changed.
    policies = sa.table(
        "traffic_policies",
        sa.column("canary", sa.Integer()),
        sa.column("revision", sa.Integer()),
        sa.column("changed_at", _time),
        sa.column("canary_since", _time),
        sa.column("canary_revision", sa.Integer()),
        schema=schema,
    )
    op.execute(
        sa.update(policies)
        .where(policies.c.canary.is_not(None))
        .values(canary_since=policies.c.changed_at, canary_revision=policies.c.revision)
    )


def downgrade() -> None:
    with op.batch_alter_table("traffic_policies", schema=_schema()) as table:
        table.drop_column("canary_revision")
        table.drop_column("canary_since")
        table.drop_column("promote_after_minutes")
        table.drop_column("promote_after_requests")
    op.drop_table("serving_stats")
