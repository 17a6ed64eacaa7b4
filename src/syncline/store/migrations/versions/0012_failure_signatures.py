"""The root-cause signature of each failed attempt and failed stream, kept when it fails:
`syncline failures` groups them in the database."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for table in ("attempts", "stream_runs"):
        with op.batch_alter_table(table) as t:
            t.add_column(sa.Column("signature", sa.String(16), nullable=True))
        op.create_index(f"ix_{table}_signature", table, ["signature"])


def downgrade() -> None:
    for table in ("attempts", "stream_runs"):
        op.drop_index(f"ix_{table}_signature", table)
        with op.batch_alter_table(table) as t:
            t.drop_column("signature")
