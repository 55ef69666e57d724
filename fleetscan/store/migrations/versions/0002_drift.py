"""Drift: what each run was compared with, its changes, pinned baselines.

Runs recorded before this revision get ``changes = 0`` and no ``compared_to``
(they were not compared); they stay valid references for later runs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table copy): SQLite would cascade-delete host_scans
    # if "runs" were dropped and recreated
    op.add_column("runs", sa.Column("compared_to", sa.Text, nullable=True))
    op.add_column("runs", sa.Column("changes", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "changes",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column(
            "run_pk", sa.Integer, sa.ForeignKey("runs.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("host_pk", sa.Integer, sa.ForeignKey("hosts.pk"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("proto", sa.String(4), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
        sa.Column("since_run", sa.String(64), nullable=False),
    )
    op.create_index("ix_changes_run", "changes", ["run_pk"])
    op.create_table(
        "baselines",
        sa.Column("host_pk", sa.Integer, sa.ForeignKey("hosts.pk"), primary_key=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False),
        sa.Column("pinned_at", sa.String(40), nullable=False),
    )
