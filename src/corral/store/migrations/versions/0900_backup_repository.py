"""backup_repository: the catalog of restore points, backup runs and restores

Revision ID: 0900
Revises: 0750
Create Date: 2026-12-03 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import corral.store.types

revision = "0900"
down_revision = "0750"  # re-chained after templates (0750)
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, corral.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "backup_points",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("vm_uuid", sa.String(length=36), nullable=False),
        sa.Column("vm_name", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=80), nullable=True),
        sa.Column("checkpoint", sa.String(length=128), nullable=False),
        _at("taken_at"),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("fallback", sa.Text(), nullable=True),
        _at("verified_at", True),
        sa.Column("verify_ok", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_points")),
    )
    op.create_index(op.f("ix_backup_points_vm_uuid"), "backup_points", ["vm_uuid"])
    op.create_table(
        "backup_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vm_uuid", sa.String(length=36), nullable=False),
        sa.Column("vm_name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("point_id", sa.String(length=80), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        _at("started_at"),
        _at("finished_at", True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_runs")),
    )
    op.create_index(op.f("ix_backup_runs_vm_uuid"), "backup_runs", ["vm_uuid"])
    op.create_index(op.f("ix_backup_runs_status"), "backup_runs", ["status"])
    op.create_table(
        "backup_restores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("point_id", sa.String(length=80), nullable=False),
        sa.Column("vm_uuid", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("vm_name", sa.String(length=255), nullable=False),
        sa.Column("new_uuid", sa.String(length=36), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        _at("restored_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_restores")),
    )
    op.create_index(op.f("ix_backup_restores_point_id"), "backup_restores", ["point_id"])


def downgrade() -> None:
    op.drop_table("backup_restores")
    op.drop_table("backup_runs")
    op.drop_table("backup_points")
