"""request_vms (the VMs an approved request is making), blueprints, blueprint requests

Revision ID: 1100
Revises: 1000
Create Date: 2026-12-03 20:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "1100"
down_revision = "1000"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_vms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.BigInteger(), nullable=False),
        sa.Column("disk_gb", sa.Float(), nullable=False),
        sa.Column("start_delay_s", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=True),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["vm_requests.id"],
            name=op.f("fk_request_vms_request_id_vm_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_vms")),
        sa.UniqueConstraint("name", name=op.f("uq_request_vms_name")),
        sa.UniqueConstraint("request_id", "seq", name=op.f("uq_request_vms_request_id")),
    )
    with op.batch_alter_table("request_vms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_vms_request_id"), ["request_id"], unique=False)
    op.create_table(
        "blueprints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blueprints")),
        sa.UniqueConstraint("name", name=op.f("uq_blueprints_name")),
    )
    with op.batch_alter_table("vm_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blueprint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("tiers", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("vm_requests", schema=None) as batch_op:
        batch_op.drop_column("tiers")
        batch_op.drop_column("blueprint")
    op.drop_table("blueprints")
    with op.batch_alter_table("request_vms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_vms_request_id"))
    op.drop_table("request_vms")
