"""Paused connections, and cancel requests on queue entries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pauses",
        sa.Column("connection", sa.String(255), nullable=False),
        sa.Column("paused_at", TS, nullable=False),
        sa.Column("paused_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("connection", name="pk_pauses"),
    )
    with op.batch_alter_table("run_queue") as queue:
        queue.add_column(sa.Column("cancel_requested_at", TS, nullable=True))
        queue.add_column(sa.Column("cancel_requested_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_queue") as queue:
        queue.drop_column("cancel_requested_by")
        queue.drop_column("cancel_requested_at")
    op.drop_table("pauses")
