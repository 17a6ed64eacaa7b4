"""Run totals per connection, region and status, kept as runs end: metrics read them."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


def upgrade() -> None:
    op.create_table(
        "run_totals",
        sa.Column("connection", sa.String(255), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_committed", sa.BigInteger(), nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("buckets", sa.Text(), nullable=False),
        sa.Column("last_run", sa.Integer(), nullable=False),
        sa.Column("last_ended", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("connection", "region", "status", name="pk_run_totals"),
    )
    op.create_index("ix_runs_status", "runs", ["status"])  # the runs going now, at every scrape
    bind = op.get_bind()
    under = ", ".join(f"SUM(CASE WHEN seconds <= {b} THEN 1 ELSE 0 END)" for b in BUCKETS)
    rows = bind.execute(sa.text(
        "SELECT connection, region, status, COUNT(*), COALESCE(SUM(rows_read), 0), "
        "COALESCE(SUM(rows_committed), 0), COALESCE(SUM(rows_quarantined), 0), "
        f"COALESCE(SUM(attempts), 0), COALESCE(SUM(seconds), 0), MAX(id), MAX(ended_at), {under} "
        "FROM runs WHERE ended_at IS NOT NULL AND status <> 'running' "
        "GROUP BY connection, region, status")).all()
    table = sa.table("run_totals", *(sa.column(c) for c in (
        "connection", "region", "status", "runs", "rows_read", "rows_committed", "rows_quarantined",
        "attempts", "seconds", "buckets", "last_run", "last_ended")))
    if rows:
        op.bulk_insert(table, [
            {"connection": r[0], "region": r[1], "status": r[2], "runs": r[3], "rows_read": r[4],
             "rows_committed": r[5], "rows_quarantined": r[6], "attempts": r[7], "seconds": float(r[8]),
             "buckets": json.dumps([int(u or 0) for u in r[11:]]), "last_run": r[9], "last_ended": r[10]}
            for r in rows])


def downgrade() -> None:
    op.drop_index("ix_runs_status", "runs")
    op.drop_table("run_totals")
