"""requests_quotas: VM requests, their decisions and reservations, department quotas

Revision ID: 0700
Revises: 0600
Create Date: 2026-12-03 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "0700"
down_revision = "0600"
branch_labels = None
depends_on = None


def _fk(table: str) -> sa.Column[int]:
    return sa.Column(
        "request_id",
        sa.Integer(),
        sa.ForeignKey(
            "vm_requests.id", ondelete="CASCADE", name=f"fk_{table}_request_id_vm_requests"
        ),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "vm_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False, server_default="vms"),
        sa.Column("vm_uuid", sa.String(36)),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("department", sa.String(256), nullable=False),
        sa.Column("purpose", sa.String(1024), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("template", sa.String(256), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.BigInteger(), nullable=False),
        sa.Column("disk_gb", sa.Double(), nullable=False),
        sa.Column("lease_days", sa.Integer(), nullable=False),
        sa.Column("monthly_cost", sa.Double(), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("approvals_needed", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("placement", sa.JSON(), nullable=False),
        sa.Column("capacity_status", sa.String(16), nullable=False),
        sa.Column("ha_host", sa.String(255)),
        sa.Column("failure_reason", sa.Text()),
        sa.Column("provisioned_vms", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", UTCDateTime(timezone=True)),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_vm_requests_requester", "vm_requests", ["requester"])
    op.create_index("ix_vm_requests_department", "vm_requests", ["department"])
    op.create_index("ix_vm_requests_state", "vm_requests", ["state"])
    op.create_table(
        "request_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _fk("request_decisions"),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
    )
    op.create_index("ix_request_decisions_request_id", "request_decisions", ["request_id"])
    op.create_table(
        "request_reservations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _fk("request_reservations"),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("vm", sa.String(256), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.BigInteger(), nullable=False),
        sa.Column("disk_gb", sa.Double(), nullable=False),
    )
    op.create_index("ix_request_reservations_request_id", "request_reservations", ["request_id"])
    op.create_index("ix_request_reservations_host", "request_reservations", ["host"])
    op.create_table(
        "quotas",
        sa.Column("department", sa.String(256), primary_key=True),
        sa.Column("vcpus", sa.Double()),
        sa.Column("memory_mib", sa.Double()),
        sa.Column("storage_gb", sa.Double()),
        sa.Column("vms", sa.Double()),
        sa.Column("monthly_cost", sa.Double()),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )
    locks = op.create_table(
        "capacity_locks",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(locks, [{"name": "fleet", "version": 0}])


def downgrade() -> None:
    for table in (
        "capacity_locks",
        "quotas",
        "request_reservations",
        "request_decisions",
        "vm_requests",
    ):
        op.drop_table(table)
