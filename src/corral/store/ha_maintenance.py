"""Hosts in HA maintenance, kept in their own table so any process may set the mark.

The operator's command (CLI or API) writes the mark and the VMs it moved off the host;
the leading HA manager reads every mark at the start of each round and applies it to its
own state. The manager never writes here, so the two never race on one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from corral.store.db import Database
from corral.store.models import HAMaintenanceRow

ENTERING, IN = "entering", "in"


@dataclass(frozen=True)
class Mark:
    host: str
    state: str
    #: VM -> the host it was live-migrated to
    moves: dict[str, str]
    since: datetime
    by: str


def enter(db: Database, manager: str, host: str, by: str) -> None:
    """Mark ``host`` as entering maintenance (kept as it is if already marked)."""
    with db.session() as s:
        if s.get(HAMaintenanceRow, (manager, host)) is None:
            now = datetime.now(UTC)
            s.add(HAMaintenanceRow(manager=manager, host=host, state=ENTERING, moves={},
                                   since=now, by=by))  # fmt: skip


def record(db: Database, manager: str, host: str, moves: dict[str, str], state: str) -> None:
    """Add ``moves`` to the host's mark and set its state."""
    with db.session() as s:
        row = s.get(HAMaintenanceRow, (manager, host))
        if row is None:
            return
        row.moves = {**row.moves, **moves}
        row.state = state


def leave(db: Database, manager: str, host: str) -> bool:
    """Clear the mark; False when the host was not in maintenance."""
    with db.session() as s:
        row = s.get(HAMaintenanceRow, (manager, host))
        if row is None:
            return False
        s.delete(row)
        return True


def marks(db: Database, manager: str) -> dict[str, Mark]:
    with db.session() as s:
        rows = s.scalars(select(HAMaintenanceRow).where(HAMaintenanceRow.manager == manager))
        return {
            r.host: Mark(r.host, r.state, {str(k): str(v) for k, v in r.moves.items()},
                         r.since, r.by)
            for r in rows
        }  # fmt: skip
