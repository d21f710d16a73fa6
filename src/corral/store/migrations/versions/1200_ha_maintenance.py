"""ha_maintenance: hosts in HA maintenance mode and the VMs moved off them

Revision ID: 1200
Revises: 1000
Create Date: 2026-12-03 20:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "1200"
down_revision = "1100"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ha_maintenance",
        sa.Column("manager", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("moves", sa.JSON(), nullable=False),
        sa.Column("since", UTCDateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("manager", "host", name=op.f("pk_ha_maintenance")),
    )


def downgrade() -> None:
    op.drop_table("ha_maintenance")
