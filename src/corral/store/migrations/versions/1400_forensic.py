"""forensic: chain-of-custody records of forensic snapshots and rollbacks, webhook deliveries

Revision ID: 1400
Revises: 1000
Create Date: 2026-12-03 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import corral.store.types

revision = "1400"
down_revision = "1200"
branch_labels = None
depends_on = None


def _at(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, corral.store.types.UTCDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "forensic_records",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("vm_uuid", sa.String(length=36), nullable=False),
        sa.Column("vm_name", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _at("at"),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("isolated_to", sa.String(length=255), nullable=True),
        sa.Column("point_id", sa.String(length=80), nullable=True),
        sa.Column("evidence_id", sa.String(length=80), nullable=True),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forensic_records")),
    )
    op.create_index(op.f("ix_forensic_records_kind"), "forensic_records", ["kind"])
    op.create_index(op.f("ix_forensic_records_vm_uuid"), "forensic_records", ["vm_uuid"])
    op.create_table(
        "forensic_deliveries",
        sa.Column("digest", sa.String(length=64), nullable=False),
        _at("received_at"),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_forensic_deliveries")),
    )
    op.create_index(
        op.f("ix_forensic_deliveries_received_at"), "forensic_deliveries", ["received_at"]
    )


def downgrade() -> None:
    op.drop_table("forensic_deliveries")
    op.drop_table("forensic_records")
