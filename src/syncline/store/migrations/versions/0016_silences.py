"""Silences, and the group an alert's subject is told with."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(255), nullable=True),
        sa.Column("rule", sa.String(255), nullable=True),
        sa.Column("starts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_index("ix_silences_ends", "silences", ["ends"])
    with op.batch_alter_table("alert_states") as batch:
        batch.add_column(sa.Column("group_key", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("alert_states") as batch:
        batch.drop_column("group_key")
    op.drop_index("ix_silences_ends", "silences")
    op.drop_table("silences")
