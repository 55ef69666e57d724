"""Alerts: what is open (alerted and not yet resolved) and what is still to deliver.

``alert_state`` holds one row per open alert, keyed by its dedup key, so an
unchanged finding alerts once across runs. ``alert_outbox`` keeps messages a
destination did not take; the next run delivers them first.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_state",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("host", sa.Text, nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("listener", sa.Text, nullable=True),
        sa.Column("run_id", sa.String(64), nullable=False),
    )
    op.create_table(
        "alert_outbox",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(200), nullable=False),
    )
    op.create_index("ix_alert_outbox_destination", "alert_outbox", ["destination", "pk"])


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_destination", "alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_table("alert_state")
