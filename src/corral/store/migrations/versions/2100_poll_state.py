"""poll_state: each host's place in the polling cycle, its lease and its last fingerprint

Revision ID: 2100
Revises: 1900
Create Date: 2026-12-04 04:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "2100"
down_revision = "2000"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_state",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("wanted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_by", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("reads", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_poll_state_host_id_hosts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("host_id", name=op.f("pk_poll_state")),
    )
    op.create_index(op.f("ix_poll_state_due_at"), "poll_state", ["due_at"])
    op.create_index(op.f("ix_poll_state_wanted_at"), "poll_state", ["wanted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_poll_state_wanted_at"), table_name="poll_state")
    op.drop_index(op.f("ix_poll_state_due_at"), table_name="poll_state")
    op.drop_table("poll_state")
