"""First schema: runs, hosts, content-addressed blobs, one row per host scan.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False, unique=True),
        sa.Column("started", sa.String(40), nullable=False),
        sa.Column("finished", sa.String(40), nullable=False),
        sa.Column("tool_version", sa.String(40), nullable=False),
        sa.Column("inventory_digest", sa.String(80), nullable=False),
        sa.Column("policy_digest", sa.String(80), nullable=False),
        sa.Column("inventory_files", sa.Text, nullable=False),
        sa.Column("policy_files", sa.Text, nullable=False),
        sa.Column("hostkey_checking", sa.Boolean, nullable=False),
        sa.Column("interrupted", sa.Boolean, nullable=False),
        sa.Column("fail_on", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=False),
        sa.Column("hosts", sa.Integer, nullable=False),
        sa.Column("listeners", sa.Integer, nullable=False),
        sa.Column("by_status", sa.Text, nullable=False),
        sa.Column("active_by_severity", sa.Text, nullable=False),
    )
    op.create_index("ix_runs_started", "runs", ["started"])
    op.create_table(
        "hosts",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(32), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "host_scans",
        sa.Column(
            "run_pk", sa.Integer, sa.ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("host_pk", sa.Integer, sa.ForeignKey("hosts.pk"), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("listeners", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(32), nullable=False),
        sa.Column("timings", sa.Text, nullable=False),
    )
    op.create_index("ix_host_scans_host_status_run", "host_scans", ["host_pk", "status", "run_pk"])
