"""vm list indexes: the environment and lease-expired filters, and substring search on PostgreSQL

The VM list at 100,000 VMs (benchmarks/bench_dashboard_scale.py) scanned the whole table for
three of its filters: an environment (with or without a state), leases past their end, and the
search box (a LIKE '%text%' on the name, UUID and purpose, counted on every page). The first
two get partial indexes like the other filters' (live VMs only). The second gets trigram indexes on
PostgreSQL, where the pg_trgm extension is available (a trusted extension: the database's
owner may create it); elsewhere the search keeps scanning, which SQLite does quickly at the
sizes it serves.

Revision ID: 1800
Revises: 1400
Create Date: 2026-12-04 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1800"
down_revision = "1400"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")
#: (index, expression) of the search's three LIKE operands, as corral.inventory.filters has them
TRIGRAM = (
    ("ix_vms_trgm_name", "lower(name)"),
    ("ix_vms_trgm_uuid", "uuid"),
    ("ix_vms_trgm_purpose", "lower(coalesce(purpose, ''))"),
)


def _trigrams_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).first()
    return found is not None


def upgrade() -> None:
    op.create_index(
        "ix_vms_live_environment_state",
        "vms",
        ["environment", "state", "name", "uuid"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_index(
        "ix_vms_live_expires_on",
        "vms",
        ["expires_on"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    if _trigrams_available():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, expression in TRIGRAM:
            op.execute(
                f"CREATE INDEX {name} ON vms USING gin (({expression}) gin_trgm_ops) "
                "WHERE deleted_at IS NULL"
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name, _ in TRIGRAM:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_vms_live_expires_on", table_name="vms")
    op.drop_index("ix_vms_live_environment_state", table_name="vms")
