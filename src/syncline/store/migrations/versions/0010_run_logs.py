"""Run logs: every line a run logged, for `syncline logs` on any machine; and an API
source's request figures per stream."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "run_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("stream", sa.String(255), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("logger", sa.String(128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_run_logs"),
    )
    op.create_index("ix_run_logs_run_id", "run_logs", ["run_id", "id"])
    op.create_index("ix_run_logs_time", "run_logs", ["time"])
    with op.batch_alter_table("stream_runs") as streams:
        streams.add_column(sa.Column("requests", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stream_runs") as streams:
        streams.drop_column("requests")
    op.drop_index("ix_run_logs_time", "run_logs")
    op.drop_index("ix_run_logs_run_id", "run_logs")
    op.drop_table("run_logs")
