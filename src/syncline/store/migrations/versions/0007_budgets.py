"""Request budgets shared by every process (a REST source's rate_limit across workers)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_budgets"),
    )


def downgrade() -> None:
    op.drop_table("budgets")
