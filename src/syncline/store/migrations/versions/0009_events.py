"""The event log: one append-only table of typed events; the region of each run."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("connection", sa.String(255), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("stream", sa.String(255), nullable=True),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_connection_id", "events", ["connection", "id"])
    op.create_index("ix_events_kind_id", "events", ["kind", "id"])
    op.create_index("ix_events_time", "events", ["time"])
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("region", sa.String(64), nullable=False, server_default="default"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("region")
    op.drop_index("ix_events_time", "events")
    op.drop_index("ix_events_kind_id", "events")
    op.drop_index("ix_events_connection_id", "events")
    op.drop_table("events")
