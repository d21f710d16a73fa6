"""backup_restore_tests: a restore test is claimed before it acts (state, worker, files)

A test's row is written first, ``running``, with the process doing it and every file it will
write; a test whose process died is then found, what it left removed, and its row ended as
failed (corral.services.backup_restore_test).

Revision ID: 2400
Revises: 2300
Create Date: 2026-12-04 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2400"
down_revision = "2300"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "backup_restore_tests",
        sa.Column("state", sa.String(length=16), nullable=False, server_default="ended"),
    )
    op.add_column(
        "backup_restore_tests",
        sa.Column("worker", sa.String(length=128), nullable=False, server_default=""),
    )
    op.add_column("backup_restore_tests", sa.Column("files", sa.JSON(), nullable=True))
    op.create_index("ix_backup_restore_tests_state", "backup_restore_tests", ["state"])


def downgrade() -> None:
    op.drop_index("ix_backup_restore_tests_state", "backup_restore_tests")
    with op.batch_alter_table("backup_restore_tests") as batch:
        batch.drop_column("files")
        batch.drop_column("worker")
        batch.drop_column("state")
