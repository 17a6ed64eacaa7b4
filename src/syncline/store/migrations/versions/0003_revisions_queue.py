"""Config revisions, the run queue, and the revision each run ran."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("revision", sa.Integer(), nullable=True))
    op.create_table(
        "config_revisions",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("applied_by", sa.String(255), nullable=False),
        sa.Column("applied_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_config_revisions"),
    )
    op.create_table(
        "run_queue",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("options", sa.Text(), server_default="{}", nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("not_before", TS, nullable=False),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_run_queue"),
    )
    op.create_index("ix_run_queue_state_connection", "run_queue", ["state", "connection"])


def downgrade() -> None:
    op.drop_index("ix_run_queue_state_connection", "run_queue")
    op.drop_table("run_queue")
    op.drop_table("config_revisions")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("revision")
