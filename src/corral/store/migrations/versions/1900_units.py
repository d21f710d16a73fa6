"""units: deployed blueprints with their isolated network, state and operation in progress

Revision ID: 1900
Revises: 1800
Create Date: 2026-12-04 00:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "1900"
down_revision = "1800"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("blueprint", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=True),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["vm_requests.id"],
            name=op.f("fk_units_request_id_vm_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("network", name=op.f("uq_units_network")),
        sa.UniqueConstraint("request_id", name=op.f("uq_units_request_id")),
    )


def downgrade() -> None:
    op.drop_table("units")
