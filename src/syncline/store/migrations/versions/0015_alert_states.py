"""Alert rule states (pending, firing) and event rules' cursors over the event log."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("rule", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("last_notified", sa.DateTime(timezone=True), nullable=True),
        sa.Column("told", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("rule", "subject", name="pk_alert_states"),
    )
    op.create_table(
        "alert_cursors",
        sa.Column("rule", sa.String(255), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("rule", name="pk_alert_cursors"),
    )


def downgrade() -> None:
    op.drop_table("alert_cursors")
    op.drop_table("alert_states")
