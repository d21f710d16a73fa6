"""ha_state: the HA manager's saved state and its event log

Revision ID: 0600
Revises: 0300
Create Date: 2026-12-03 13:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import corral.store.types

revision = "0600"
down_revision = "0300"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ha_manager_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("round_t", sa.Double(), nullable=False),
        sa.Column("updated_at", corral.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ha_manager_state")),
    )
    op.create_table(
        "ha_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("manager", sa.String(length=64), nullable=False),
        sa.Column("t", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("vm", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("alert", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", corral.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ha_events")),
    )
    with op.batch_alter_table("ha_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ha_events_manager"), ["manager"], unique=False)
        batch_op.create_index(batch_op.f("ix_ha_events_kind"), ["kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ha_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ha_events_kind"))
        batch_op.drop_index(batch_op.f("ix_ha_events_manager"))
    op.drop_table("ha_events")
    op.drop_table("ha_manager_state")
