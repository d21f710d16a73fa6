"""templates and provisions: the base-image catalog and each provisioning attempt

Revision ID: 0750
Revises: 0600
Create Date: 2026-12-03 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "0750"
down_revision = "0700"  # re-chained after requests and quotas (0700)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("pool", sa.String(255), nullable=False),
        sa.Column("volume", sa.String(255), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(255), nullable=True),
        sa.Column("domain_type", sa.String(16), nullable=False),
        sa.Column("machine", sa.String(64), nullable=True),
        sa.Column("arch", sa.String(32), nullable=False),
        sa.Column("kernel", sa.String(1024), nullable=True),
        sa.Column("initrd", sa.String(1024), nullable=True),
        sa.Column("cmdline", sa.String(1024), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_templates"),
        sa.UniqueConstraint("name", name="uq_templates_name"),
    )
    op.create_table(
        "provisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("vm_uuid", sa.String(36), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_provisions"),
    )
    op.create_index("ix_provisions_name", "provisions", ["name"])
    op.create_index("ix_provisions_status", "provisions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_provisions_status", table_name="provisions")
    op.drop_index("ix_provisions_name", table_name="provisions")
    op.drop_table("provisions")
    op.drop_table("templates")
