"""users, roles, departments, token owners; the hash-chained audit log

Tokens made before users existed were anonymous and could do everything; they now belong to
the built-in user ``local-admin`` (role admin), so they keep working unchanged. Reassign them
by creating tokens for real users (``corral token create --user NAME``) and revoking the old.

Revision ID: 0400
Revises: 0300
Create Date: 2026-12-03 13:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from corral.store.types import UTCDateTime

revision = "0400"
down_revision = "0300"
branch_labels = None
depends_on = None

LEGACY_USER = "local-admin"
GENESIS = "0" * 64


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", UTCDateTime(timezone=True)),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    roles = op.create_table(
        "user_roles",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_user_roles_user_id_users"),
            nullable=False,
        ),
        sa.Column("role", sa.String(32), nullable=False),
        sa.UniqueConstraint("user_id", "role", name="uq_user_roles_user_id"),
    )
    op.create_index("ix_user_roles_user_id", "user_roles", ["user_id"])
    op.create_table(
        "user_departments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_user_departments_user_id_users"),
            nullable=False,
        ),
        sa.Column("department", sa.String(256), nullable=False),
        sa.UniqueConstraint("user_id", "department", name="uq_user_departments_user_id"),
    )
    op.create_index("ix_user_departments_user_id", "user_departments", ["user_id"])
    owners = op.create_table(
        "token_owners",
        sa.Column(
            "token_id",
            sa.Integer(),
            sa.ForeignKey(
                "api_tokens.id", ondelete="CASCADE", name="fk_token_owners_token_id_api_tokens"
            ),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_token_owners_user_id_users"),
            nullable=False,
        ),
    )
    op.create_index("ix_token_owners_user_id", "token_owners", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("roles", sa.String(128), nullable=False),
        sa.Column("origin", sa.String(256), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("before", sa.JSON()),
        sa.Column("after", sa.JSON()),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_target", "audit_log", ["target"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])
    _adopt_anonymous_tokens(users, roles, owners)


def _adopt_anonymous_tokens(users: sa.Table, roles: sa.Table, owners: sa.Table) -> None:
    """Every existing token becomes a token of ``local-admin``: it keeps doing what it did."""
    conn = op.get_bind()
    token_ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM api_tokens"))]
    if not token_ids:
        return
    conn.execute(users.insert().values(name=LEGACY_USER, created_at=datetime.now(UTC)))
    user_id = conn.execute(sa.select(users.c.id).where(users.c.name == LEGACY_USER)).scalar_one()
    conn.execute(roles.insert().values(user_id=user_id, role="admin"))
    conn.execute(owners.insert(), [{"token_id": t, "user_id": user_id} for t in token_ids])


def downgrade() -> None:
    for table in ("audit_head", "audit_log", "token_owners", "user_departments", "user_roles"):
        op.drop_table(table)
    op.drop_table("users")
