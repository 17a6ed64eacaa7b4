"""Each ended run's duration in seconds, kept when it ends: metrics add them without date
arithmetic over every run."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("seconds", sa.Float(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE runs SET seconds = GREATEST(0, EXTRACT(EPOCH FROM ended_at - started_at)) "
                   "WHERE ended_at IS NOT NULL")
    else:
        op.execute("UPDATE runs SET seconds = MAX(0, (julianday(ended_at) - julianday(started_at)) * 86400) "
                   "WHERE ended_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("seconds")
