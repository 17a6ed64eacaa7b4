"""Leases: one holder per connection, with a fencing token that only grows."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("connection", sa.String(255), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("holder_host", sa.String(255), nullable=True),
        sa.Column("holder_pid", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("acquired_at", TS, nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("connection", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
