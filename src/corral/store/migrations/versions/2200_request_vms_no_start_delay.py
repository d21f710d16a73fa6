"""request_vms: drop start_delay_s (never read: a unit's tier start delays come from its
blueprint's tiers when the unit starts, corral.services.units)

Revision ID: 2200
Revises: 2100
Create Date: 2026-12-04 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2200"
down_revision = "2100"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_vms", schema=None) as batch_op:
        batch_op.drop_column("start_delay_s")


def downgrade() -> None:
    with op.batch_alter_table("request_vms", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("start_delay_s", sa.Float(), nullable=False, server_default="0")
        )
