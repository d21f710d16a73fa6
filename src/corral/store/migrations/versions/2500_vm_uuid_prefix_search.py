"""vms: the search matches the start of a UUID, by a btree, not any part of it by trigrams

The VM search used to find its text anywhere in a UUID, served on PostgreSQL by a trigram
index (migration 1800). Thirty-odd trigrams a row made it the dearest index of a first sync:
some 0.1 s more of the server's CPU per 10,000 VMs written than the btree replacing it, most
of it in the VACUUM that ends the sync, after the last host answered (the btree costs 0.03 s;
benchmarks/bench_inventory_sync.py). And a short text of hex digits ("db", "cafe", "a1")
matched a VM in every few at random by its UUID. The search now matches the start of a UUID
(a whole one pasted, or its first characters as tools shorten it), which a btree in pattern
order serves; names and purposes keep their trigram indexes.

Revision ID: 2500
Revises: 2400
Create Date: 2026-12-04 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2500"
down_revision = "2400"
branch_labels = None
depends_on = None

PREFIX = "ix_vms_live_uuid_prefix"
TRIGRAM = "ix_vms_trgm_uuid"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite scans for the search, as it did (migration 1800)
    op.execute(f"DROP INDEX IF EXISTS {TRIGRAM}")
    op.execute(f"CREATE INDEX {PREFIX} ON vms (uuid varchar_pattern_ops) WHERE deleted_at IS NULL")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {PREFIX}")
    trigrams = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    if trigrams.first() is not None:  # as 1800 made it, where the extension was available
        op.execute(
            f"CREATE INDEX {TRIGRAM} ON vms USING gin ((uuid) gin_trgm_ops) "
            "WHERE deleted_at IS NULL"
        )
