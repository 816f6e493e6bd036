"""Initial metadata schema: runs, stage executions, lineage edges, audit log, raw batches.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose: a migration must keep building what it built when released, so it
# does not import the live table definitions.
_text = sa.String()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", _text, primary_key=True),
        sa.Column("pipeline", _text, nullable=False),
        sa.Column("status", _text, nullable=False),
        sa.Column("started_at", _time, nullable=False),
        sa.Column("finished_at", _time, nullable=True),
        sa.Column("spec_digest", _text, nullable=False),
        sa.Column("summary", _json, nullable=False),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "stage_executions",
        sa.Column("execution_id", _text, primary_key=True),
        sa.Column("stage", _text, nullable=False),
        sa.Column("idempotency_key", _text, nullable=False),
        sa.Column("status", _text, nullable=False),
        sa.Column("started_at", _time, nullable=False),
        sa.Column("run_id", _text, nullable=True),
        sa.Column("input_event_id", _text, nullable=True),
        sa.Column("finished_at", _time, nullable=True),
        sa.Column("outputs", _json, nullable=False),
        sa.Column("error", _text, nullable=True),
    )
    op.create_index(
        "ix_stage_executions_key",
        "stage_executions",
        ["stage", "idempotency_key", "started_at"],
    )
    op.create_index("ix_stage_executions_run", "stage_executions", ["run_id", "started_at"])
    op.create_table(
        "lineage_edges",
        sa.Column("parent_id", _text, primary_key=True),
        sa.Column("child_id", _text, primary_key=True),
        sa.Column("relation", _text, primary_key=True),
        sa.Column("parent_kind", _text, nullable=False),
        sa.Column("child_kind", _text, nullable=False),
        sa.Column("created_at", _time, nullable=False),
    )
    op.create_index("ix_lineage_edges_child", "lineage_edges", ["child_id"])
    op.create_table(
        "audit_log",
        sa.Column("entry_id", _text, primary_key=True),
        sa.Column("at", _time, nullable=False),
        sa.Column("actor", _text, nullable=False),
        sa.Column("action", _text, nullable=False),
        sa.Column("subject", _text, nullable=False),
        sa.Column("details", _json, nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_subject", "audit_log", ["subject", "at"])
    op.create_table(
        "raw_batches",
        sa.Column("batch_id", _text, primary_key=True),
        sa.Column("source", _text, nullable=False),
        sa.Column("location", _text, nullable=False),
        sa.Column("files", _json, nullable=False),
        sa.Column("schema", _json, nullable=False),
        sa.Column("schema_fingerprint", _text, nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("content_digest", _text, nullable=False),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("origin", _text, nullable=False),
        sa.Column("run_id", _text, nullable=True),
        sa.Column("quarantine", _text, nullable=True),
        sa.Column("bad_rows", sa.BigInteger(), nullable=False),
        sa.Column("extra", _json, nullable=False),
        sa.UniqueConstraint("source", "content_digest", name="uq_raw_batches_source_digest"),
    )
    op.create_index("ix_raw_batches_created", "raw_batches", ["created_at"])
    op.create_index("ix_raw_batches_source", "raw_batches", ["source", "created_at"])


def downgrade() -> None:
    for table in ("raw_batches", "audit_log", "lineage_edges", "stage_executions", "runs"):
        op.drop_table(table)
