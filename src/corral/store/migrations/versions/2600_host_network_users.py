"""host_network_users: per host and network, how many live VMs have a NIC on it

Kept by the sync (and whatever else changes a VM's NICs, host or life) so that a page of
networks reads its counts by key instead of counting every VM's NIC list (corral.store.
network_users); filled here from the VMs and networks already stored.

Revision ID: 2600
Revises: 2500
Create Date: 2026-12-04 22:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.network_users import recount

revision = "2600"
down_revision = "2500"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "host_network_users",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=256), nullable=False),
        sa.Column("vm_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name=op.f("fk_host_network_users_host_id_hosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("host_id", "network", name=op.f("pk_host_network_users")),
    )
    bind = op.get_bind()
    recount(bind, bind.execute(sa.text("SELECT id FROM hosts")).scalars())


def downgrade() -> None:
    op.drop_table("host_network_users")
