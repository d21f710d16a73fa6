"""backup_point_holds: restore points on legal hold, spared by every retention run

Revision ID: 2300
Revises: 2200
Create Date: 2026-12-04 16:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "2300"
down_revision = "2200"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backup_point_holds",
        sa.Column("point_id", sa.String(length=80), nullable=False),
        sa.Column("vm_uuid", sa.String(length=36), nullable=False),
        sa.Column("held_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("held_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("point_id", name=op.f("pk_backup_point_holds")),
    )


def downgrade() -> None:
    op.drop_table("backup_point_holds")
