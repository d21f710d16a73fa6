"""The HA manager's saved state and event log in the database.

A round's new state and its events are written in one transaction, so a manager
that dies never leaves a state without the events that led to it (or the reverse).
Plain dicts in and out: the store does not know the manager's types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from corral.store.db import Database
from corral.store.models import HAEventRow, HAManagerStateRow


def save_round(
    db: Database,
    name: str,
    state: Mapping[str, Any],
    t: float,
    events: Sequence[Mapping[str, Any]] = (),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Store ``state`` as manager ``name``'s latest and append ``events`` (Event.to_dict())."""
    at = now()
    with db.session() as s:
        row = s.get(HAManagerStateRow, name)
        if row is None:
            s.add(HAManagerStateRow(name=name, state=dict(state), round_t=t, updated_at=at))
        else:
            row.state, row.round_t, row.updated_at = dict(state), t, at
        s.add_all(_row(name, e, at) for e in events)


def _row(name: str, e: Mapping[str, Any], at: datetime) -> HAEventRow:
    return HAEventRow(
        manager=name,
        t=float(e["t"]),
        kind=str(e["kind"]),
        host=e.get("host"),
        vm=e.get("vm"),
        detail=str(e.get("detail", "")),
        alert=bool(e.get("alert", False)),
        recorded_at=at,
    )


def append_events(db: Database, name: str, events: Sequence[Mapping[str, Any]]) -> None:
    """Append events of another writer than the leader (a maintenance run) to ``name``'s log."""
    at = datetime.now(UTC)
    with db.session() as s:
        s.add_all(_row(name, e, at) for e in events)


def load_state(db: Database, name: str) -> dict[str, Any] | None:
    """Manager ``name``'s latest saved state, or None if it never ran."""
    with db.session() as s:
        row = s.get(HAManagerStateRow, name)
        return None if row is None else dict(row.state)


def events(db: Database, name: str) -> list[dict[str, Any]]:
    """Manager ``name``'s events, oldest first."""
    with db.session() as s:
        rows = s.scalars(
            select(HAEventRow).where(HAEventRow.manager == name).order_by(HAEventRow.id)
        )
        return [
            {"t": r.t, "kind": r.kind, "host": r.host, "vm": r.vm, "detail": r.detail,
             "alert": r.alert}
            for r in rows
        ]  # fmt: skip


def last_event_id(db: Database, name: str) -> int:
    """The id of manager ``name``'s newest event (0: none yet)."""
    with db.session() as s:
        found = s.scalar(select(func.max(HAEventRow.id)).where(HAEventRow.manager == name))
        return int(found or 0)


def events_after(
    db: Database, name: str, after: int, kinds: Sequence[str]
) -> list[tuple[int, dict[str, Any]]]:
    """Manager ``name``'s events of ``kinds`` with an id above ``after``: (id, event), oldest
    first (how the leader learns what other writers did since it last looked)."""
    with db.session() as s:
        rows = s.scalars(
            select(HAEventRow)
            .where(HAEventRow.manager == name, HAEventRow.id > after, HAEventRow.kind.in_(kinds))
            .order_by(HAEventRow.id)
        )
        return [(r.id, {"t": r.t, "kind": r.kind, "host": r.host, "vm": r.vm,
                        "detail": r.detail}) for r in rows]  # fmt: skip
