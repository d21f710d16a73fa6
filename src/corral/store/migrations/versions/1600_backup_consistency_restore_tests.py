"""backup consistency per restore point; restore tests that boot the restored VM

Revision ID: 1600
Revises: 1500
Create Date: 2026-12-04 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import corral.store.types

revision = "1600"
down_revision = "1500"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "backup_points",
        sa.Column("consistency", sa.String(length=16), nullable=False, server_default="crash"),
    )
    op.add_column("backup_points", sa.Column("consistency_note", sa.Text(), nullable=True))
    op.create_table(
        "backup_restore_tests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vm_uuid", sa.String(length=36), nullable=False),
        sa.Column("vm_name", sa.String(length=255), nullable=False),
        sa.Column("point_id", sa.String(length=80), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("restore_seconds", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("rto_minutes", sa.Integer(), nullable=True),
        sa.Column("rto_met", sa.Boolean(), nullable=True),
        sa.Column("tested_at", corral.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_backup_restore_tests_vm_uuid", "backup_restore_tests", ["vm_uuid"])
    op.create_index("ix_backup_restore_tests_tested_at", "backup_restore_tests", ["tested_at"])


def downgrade() -> None:
    op.drop_index("ix_backup_restore_tests_tested_at", "backup_restore_tests")
    op.drop_index("ix_backup_restore_tests_vm_uuid", "backup_restore_tests")
    op.drop_table("backup_restore_tests")
    op.drop_column("backup_points", "consistency_note")
    op.drop_column("backup_points", "consistency")
