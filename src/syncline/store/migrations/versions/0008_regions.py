"""The region of each queued run: only workers of that region claim it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("run_queue") as queue:
        queue.add_column(sa.Column("region", sa.String(64), nullable=False, server_default="default"))


def downgrade() -> None:
    with op.batch_alter_table("run_queue") as queue:
        queue.drop_column("region")
