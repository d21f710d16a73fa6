"""ha_abort_drills: who runs a maintenance evacuation (and an abort asked of it); drill runs

Revision ID: 1500
Revises: 1400
Create Date: 2026-12-04 00:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "1500"
down_revision = "1400"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ha_maintenance") as batch:
        batch.add_column(sa.Column("runner", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("beat_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("abort_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("done", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("total", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "ha_drill_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("manager", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("scheduled", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("running", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ha_drill_runs")),
        sa.UniqueConstraint("manager", "running", name=op.f("uq_ha_drill_runs_manager")),
    )
    op.create_index(op.f("ix_ha_drill_runs_manager"), "ha_drill_runs", ["manager"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ha_drill_runs_manager"), table_name="ha_drill_runs")
    op.drop_table("ha_drill_runs")
    with op.batch_alter_table("ha_maintenance") as batch:
        for column in ("total", "done", "abort_requested", "beat_at", "runner"):
            batch.drop_column(column)
