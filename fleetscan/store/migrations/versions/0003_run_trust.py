"""Host-key trust of a run: inventory known_hosts trusted, --accept-new file and
the keys it learned (one JSON document per run, so a re-rendered report says
what the original said). Runs recorded before have none: defaults apply.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("trust", sa.Text, nullable=True))
