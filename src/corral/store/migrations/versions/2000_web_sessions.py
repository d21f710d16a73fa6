"""web_sessions: the dashboard's sign-in sessions in the database, shared by every worker

Revision ID: 2000
Revises: 1900
Create Date: 2026-12-04 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "2000"
down_revision = "1900"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("credential", sa.String(length=16), nullable=True),
        sa.Column("key", sa.String(length=128), nullable=True),
        sa.Column("user_name", sa.String(length=64), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_seen_at"), "web_sessions", ["seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_seen_at"), table_name="web_sessions")
    op.drop_table("web_sessions")
