"""Drill runs, manual and scheduled: one row each, and at most one running per manager.

A running drill's row has ``running = 1``; the unique (manager, running) pair makes a second
concurrent drill fail to insert, in any process, on either database (NULLs never clash),
so "never two drills at once" does not depend on who checks first. A drill whose process
died leaves its row running: past its deadline it is closed as abandoned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from corral.errors import ConflictError, StoreError
from corral.store.db import Database
from corral.store.models import HADrillRunRow

RUNNING = "running"


@dataclass(frozen=True)
class DrillRun:
    id: int
    host: str
    scheduled: bool
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    detail: str


def begin(db: Database, manager: str, host: str, scheduled: bool, now: datetime) -> int:
    """Record a drill of ``host`` as running; ConflictError while another one runs."""
    busy = ConflictError("Another drill is running; wait for it to end (see 'corral ha drills').")
    try:
        with db.session() as s:
            if s.scalar(_running(manager)) is not None:
                raise busy
            row = HADrillRunRow(manager=manager, host=host, scheduled=scheduled, started_at=now,
                                running=1, outcome=RUNNING, detail="")  # fmt: skip
            s.add(row)
            s.flush()
            return int(row.id)
    except StoreError:  # the unique pair: another process began one at the same moment
        raise busy from None


def end(
    db: Database, run_id: int, outcome: str, now: datetime,
    report: dict[str, Any] | None = None, detail: str = "",
) -> None:  # fmt: skip
    with db.session() as s:
        row = s.get(HADrillRunRow, run_id)
        if row is not None:
            row.running, row.outcome, row.ended_at = None, outcome, now
            row.report, row.detail = report, detail


def close_abandoned(db: Database, manager: str, older_than: timedelta, now: datetime) -> None:
    """A running drill started longer ago than ``older_than`` lost its process: close it."""
    with db.session() as s:
        row = s.scalar(_running(manager))
        if row is not None and now - row.started_at > older_than:
            row.running, row.outcome, row.ended_at = None, "abandoned", now
            row.detail = "its process stopped before the drill ended"


def close_scheduled(db: Database, manager: str, now: datetime, detail: str) -> DrillRun | None:
    """Close the running scheduled drill (it runs in the leading manager's process) as
    abandoned: what a new leader does, since the old leader's drill died with its lead."""
    with db.session() as s:
        row = s.scalar(_running(manager).where(HADrillRunRow.scheduled.is_(True)))
        if row is None:
            return None
        row.running, row.outcome, row.ended_at, row.detail = None, "abandoned", now, detail
        return DrillRun(row.id, row.host, True, row.started_at, now, row.outcome, detail)


def is_running(db: Database, manager: str) -> bool:
    with db.session() as s:
        return s.scalar(_running(manager)) is not None


def last_runs(db: Database, manager: str) -> dict[str, datetime]:
    """Host -> when its latest drill started (running ones too)."""
    out: dict[str, datetime] = {}
    for run in runs(db, manager, limit=None):
        out.setdefault(run.host, run.started_at)
    return out


def runs(db: Database, manager: str, limit: int | None = 50, offset: int = 0) -> list[DrillRun]:
    """Newest first."""
    query = (
        select(HADrillRunRow)
        .where(HADrillRunRow.manager == manager)
        .order_by(HADrillRunRow.started_at.desc(), HADrillRunRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with db.session() as s:
        return [
            DrillRun(r.id, r.host, r.scheduled, r.started_at, r.ended_at, r.outcome, r.detail)
            for r in s.scalars(query)
        ]


def _running(manager: str) -> Any:
    return select(HADrillRunRow).where(HADrillRunRow.manager == manager, HADrillRunRow.running == 1)


def count(db: Database, manager: str) -> int:
    query = select(func.count()).select_from(HADrillRunRow).where(HADrillRunRow.manager == manager)
    with db.session() as s:
        return int(s.scalar(query) or 0)


def run(db: Database, manager: str, run_id: int) -> tuple[DrillRun, dict[str, Any] | None] | None:
    """One run and its stored report (None while running or when it could not run)."""
    with db.session() as s:
        r = s.get(HADrillRunRow, run_id)
        if r is None or r.manager != manager:
            return None
        view = DrillRun(r.id, r.host, r.scheduled, r.started_at, r.ended_at, r.outcome, r.detail)
        return view, (dict(r.report) if r.report else None)
