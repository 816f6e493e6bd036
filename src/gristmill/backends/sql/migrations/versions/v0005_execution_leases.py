"""Execution leases: who runs a stage execution, and until when its lease holds.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_text = sa.String()
_time = sa.DateTime(timezone=True)


def _schema() -> str | None:
    # ALTER TABLE does not go through the connection's schema_translate_map (CREATE does):
    # name the schema the runner migrates (the version table's) explicitly.
    schema = op.get_context().opts.get("version_table_schema")
    return None if schema is None else str(schema)


def upgrade() -> None:
    # Executions recorded before leases have none: a claim treats them as expired, and
    # `gristmill gc` sweeps those left running (by their start time).
    for column in (
        sa.Column("lease_expires_at", _time, nullable=True),
        sa.Column("holder", _text, nullable=True),
    ):
        op.add_column("stage_executions", column, schema=_schema())
    op.create_index("ix_stage_executions_lease", "stage_executions", ["status", "lease_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_stage_executions_lease", table_name="stage_executions")
    with op.batch_alter_table("stage_executions", schema=_schema()) as table:
        table.drop_column("holder")
        table.drop_column("lease_expires_at")
