"""metadata version per VM, storage key per pool

Revision ID: 0100
Revises: 0200
Create Date: 2026-12-03 10:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0300"
down_revision = "0200"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "vms", sa.Column("meta_version", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "pools",
        sa.Column("storage_key", sa.String(length=4200), server_default="", nullable=False),
    )
    # Every host's storage is re-read once, so that its pools get their keys.
    op.execute(sa.text("UPDATE hosts SET storage_fingerprint = ''"))


def downgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("storage_key")
    with op.batch_alter_table("vms") as batch:
        batch.drop_column("meta_version")
