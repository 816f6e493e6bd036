"""The outbox mark: when the events an execution recorded were published (ADR 14, amended).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose (see v0001): this revision keeps building what it built when released.
_time = sa.DateTime(timezone=True)


def _schema() -> str | None:
    # ALTER TABLE does not go through the connection's schema_translate_map (see v0005)
    schema = op.get_context().opts.get("version_table_schema")
    return None if schema is None else str(schema)


def upgrade() -> None:
    op.add_column(
        "stage_executions", sa.Column("published_at", _time, nullable=True), schema=_schema()
    )
    # Executions that ended before the outbox are taken as published (their worker published
    # them or they are long gone): only executions ending from now on are relayed again.
    executions = sa.table(
        "stage_executions",
        sa.column("status", sa.String()),
        sa.column("finished_at", _time),
        sa.column("started_at", _time),
        sa.column("published_at", _time),
        schema=_schema(),
    )
    op.execute(
        executions.update()
        .where(executions.c.status != "running")
        .values(published_at=sa.func.coalesce(executions.c.finished_at, executions.c.started_at))
    )
    op.create_index(
        "ix_stage_executions_unpublished", "stage_executions", ["stage", "published_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_stage_executions_unpublished", table_name="stage_executions")
    with op.batch_alter_table("stage_executions", schema=_schema()) as table:
        table.drop_column("published_at")
