"""Hosts in HA maintenance, kept in their own table so any process may set the mark.

The operator's command (CLI or API) writes the mark and the VMs it moved off the host;
the leading HA manager reads every mark at the start of each round and applies it to its
own state. The manager never writes here, so the two never race on one row.

While an evacuation runs, its process is the mark's ``runner`` and beats (``beat_at``,
with its progress) after every step; an abort asked by another process is a flag the
runner reads at its next beat. A mark whose runner stopped beating has no runner: an abort
then ends it at once. An aborted mark stays (state ``aborted``) so the manager still
learns the VMs that did move; it counts as out of maintenance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from corral.errors import ConflictError
from corral.store.db import Database
from corral.store.models import HAMaintenanceRow

ENTERING, IN, ABORTED = "entering", "in", "aborted"
#: A runner silent this long is gone (a step beats at least every few seconds).
RUNNER_STALE = timedelta(seconds=60)

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Mark:
    host: str
    state: str
    #: VM -> the host it was live-migrated to
    moves: dict[str, str]
    since: datetime
    by: str
    runner: str | None = None
    beat_at: datetime | None = None
    abort_requested: bool = False
    done: int = 0
    total: int = 0

    @property
    def active(self) -> bool:
        """In maintenance for the manager: it places nothing here, and once empty, stops
        checking the host. An aborted evacuation is not."""
        return self.state in (ENTERING, IN)

    def running(self, now: datetime) -> bool:
        """An evacuation process still carries this mark out."""
        return (
            self.runner is not None
            and self.beat_at is not None
            and (now - self.beat_at < RUNNER_STALE)
        )


def enter(
    db: Database, manager: str, host: str, by: str, runner: str = "", now: Now = _utcnow
) -> None:
    """Mark ``host`` as entering maintenance (a mark it has is kept, its moves too) and, with
    ``runner``, claim its evacuation; ConflictError while another process runs one."""
    at = now()
    with db.session() as s:
        row = s.get(HAMaintenanceRow, (manager, host), with_for_update=True)
        if row is None:
            row = HAMaintenanceRow(manager=manager, host=host, state=ENTERING, moves={},
                                   since=at, by=by)  # fmt: skip
            s.add(row)
        elif _mark(row).running(at) and row.runner != runner:
            raise ConflictError(
                f"Host {host} is being evacuated by {row.runner}; wait for it, or abort it "
                f"with 'corral ha maintenance abort {host}'."
            )
        elif row.state == ABORTED:
            row.state, row.since, row.by = ENTERING, at, by
        if runner:
            row.runner, row.beat_at, row.abort_requested = runner, at, False
            row.done, row.total = 0, 0


def beat(
    db: Database,
    manager: str,
    host: str,
    runner: str,
    moves: dict[str, str],
    progress: tuple[int, int],
    now: Now = _utcnow,
) -> bool:
    """The runner's sign of life, its moves so far and progress; True when asked to abort."""
    with db.session() as s:
        row = s.get(HAMaintenanceRow, (manager, host))
        if row is None or row.runner != runner:
            return True  # the mark was cleared (exit) or taken over: stop
        row.moves = {**row.moves, **moves}
        row.beat_at = now()
        row.done, row.total = progress
        return bool(row.abort_requested)


def finish(
    db: Database, manager: str, host: str, runner: str, moves: dict[str, str], state: str
) -> None:
    """The runner ends: its moves and the resulting state (entering, in or aborted)."""
    with db.session() as s:
        row = s.get(HAMaintenanceRow, (manager, host))
        if row is None:
            return
        row.moves = {**row.moves, **moves}
        row.state = state
        if row.runner == runner:
            row.runner, row.beat_at, row.abort_requested = None, None, False


def record(db: Database, manager: str, host: str, moves: dict[str, str], state: str) -> None:
    """Add ``moves`` to the host's mark and set its state."""
    finish(db, manager, host, "", moves, state)


def request_abort(db: Database, manager: str, host: str, now: Now = _utcnow) -> Mark:
    """Ask the evacuation of ``host`` to stop; with no live runner the mark is aborted at once.
    The mark as it was before; ConflictError when the host is not entering maintenance."""
    at = now()
    with db.session() as s:
        row = s.get(HAMaintenanceRow, (manager, host), with_for_update=True)
        if row is None or row.state == ABORTED:
            raise ConflictError(f"Host {host} is not entering maintenance; nothing to abort.")
        if row.state == IN:
            raise ConflictError(
                f"Host {host} is already in maintenance (emptied); use 'corral ha maintenance "
                f"exit {host}' to take it out."
            )
        before = _mark(row)
        if before.running(at):
            row.abort_requested = True
        else:
            row.state, row.runner, row.beat_at = ABORTED, None, None
        return before


def leave(db: Database, manager: str, host: str) -> bool:
    """Clear the mark; False when the host was not in maintenance."""
    with db.session() as s:
        row = s.get(HAMaintenanceRow, (manager, host))
        if row is None:
            return False
        active = row.state != ABORTED
        s.delete(row)
        return active


def mark(db: Database, manager: str, host: str) -> Mark | None:
    with db.session() as s:
        row = s.get(HAMaintenanceRow, (manager, host))
        return None if row is None else _mark(row)


def marks(db: Database, manager: str) -> dict[str, Mark]:
    with db.session() as s:
        rows = s.scalars(select(HAMaintenanceRow).where(HAMaintenanceRow.manager == manager))
        return {r.host: _mark(r) for r in rows}


def _mark(r: HAMaintenanceRow) -> Mark:
    return Mark(
        r.host, r.state, {str(k): str(v) for k, v in (r.moves or {}).items()}, r.since, r.by,
        r.runner, r.beat_at, bool(r.abort_requested), r.done or 0, r.total or 0,
    )  # fmt: skip
