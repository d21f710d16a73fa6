"""Legal holds on restore points: a held point (and every parent it needs) outlives its
retention until the hold is released.

A hold is a row of its own (``backup_point_holds``): taking it inserts the row, releasing it
deletes the row, and the audit log records both with who and why. Garbage collection
(corral.services.backup_exec.gc) reads the holds and keeps those points whatever the rules say.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from corral.domain.text import check_text
from corral.errors import ConflictError, ValidationError
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.db import Database

MAX_REASON = 2000


@dataclass(frozen=True, slots=True)
class PointHold:
    point: str
    vm_uuid: str
    held_by: str
    reason: str
    held_at: datetime


def hold(
    db: Database, repo: Repository, point: str, *, by: str, reason: str,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PointHold:  # fmt: skip
    """Put restore point ``point`` on hold (NotFoundError when the repository has no such
    point, ConflictError when it is held already)."""
    check_reason(reason)
    manifest = repo.get(point)
    with db.session() as s:
        if s.get(m.BackupHoldRow, manifest.id) is not None:
            raise ConflictError(f"restore point {manifest.id} is on hold already.")
        row = m.BackupHoldRow(
            point_id=manifest.id, vm_uuid=manifest.vm_uuid, held_by=by[:64], reason=reason,
            held_at=now(),
        )  # fmt: skip
        s.add(row)
        return _hold(row)


def release(db: Database, repo: Repository, point: str, *, by: str, reason: str) -> None:
    """End the hold on ``point``; the next retention run may delete it. ``by`` and ``reason``
    go into the audit log with the deleted hold (the acting user is the audit actor)."""
    check_reason(reason)
    manifest = repo.get(point)
    with db.session() as s:
        row = s.get(m.BackupHoldRow, manifest.id)
        if row is None:
            raise ConflictError(f"restore point {manifest.id} is not on hold.")
        row.reason = f"{row.reason} (released by {by[:64]}: {reason})"[:MAX_REASON]
        s.flush()  # the release's reason is in the audit entry of the deletion
        s.delete(row)


def holds(db: Database) -> dict[str, PointHold]:
    """Every hold, by restore point."""
    with db.session() as s:
        return {r.point_id: _hold(r) for r in s.scalars(select(m.BackupHoldRow)).all()}


def _hold(row: m.BackupHoldRow) -> PointHold:
    return PointHold(row.point_id, row.vm_uuid, row.held_by, row.reason, row.held_at)


def check_reason(reason: str) -> None:
    """A reason for the record: 1-2000 characters of text (newlines allowed)."""
    if not reason.strip() or len(reason) > MAX_REASON:
        raise ValidationError(f"give a reason of 1-{MAX_REASON} characters for the record.")
    check_text(reason, "the reason", multiline=True)
