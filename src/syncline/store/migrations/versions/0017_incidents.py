"""Incidents and their timelines."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision: str | None = "0016"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("assignee", sa.String(255), nullable=True),
        sa.Column("connection", sa.String(255), nullable=True),
        sa.Column("failure_group", sa.String(64), nullable=True),
        sa.Column("rule", sa.String(255), nullable=True),
        sa.Column("dedup_key", sa.String(512), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mitigated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("opened_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_state", "incidents", ["state"])
    op.create_index("ix_incidents_dedup_key", "incidents", ["dedup_key"])
    op.create_table(
        "incident_timeline",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("by", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name="fk_incident_timeline_incident_id_incidents"),
        sa.PrimaryKeyConstraint("id", name="pk_incident_timeline"),
    )
    op.create_index("ix_incident_timeline_incident_id", "incident_timeline", ["incident_id", "id"])


def downgrade() -> None:
    op.drop_table("incident_timeline")
    op.drop_table("incidents")
