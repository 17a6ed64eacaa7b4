"""Tickets: which tracker channel follows which incident, and its ticket there."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision: str | None = "0017"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("channel", sa.String(255), nullable=False),
        sa.Column("incident", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("channel", "incident", name="pk_tickets"),
    )


def downgrade() -> None:
    op.drop_table("tickets")
