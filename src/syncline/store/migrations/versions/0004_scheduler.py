"""The scheduler: its leader lease and where it is for each connection."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leaders",
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("role", name="pk_leaders"),
    )
    op.create_table(
        "schedule_state",
        sa.Column("connection", sa.String(255), nullable=False),
        sa.Column("schedule", sa.String(255), nullable=False),
        sa.Column("next_due_at", TS, nullable=False),
        sa.Column("last_due_at", TS, nullable=True),
        sa.Column("last_entry", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("connection", name="pk_schedule_state"),
    )


def downgrade() -> None:
    op.drop_table("schedule_state")
    op.drop_table("leaders")
