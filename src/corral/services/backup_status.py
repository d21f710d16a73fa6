"""Each VM's newest restore point held against its RPO: is the promise kept right now?

Why from the catalog (``backup_points``) and not the repository's folders: the executor writes
a catalog row for every sealed point, so one grouped query answers for the whole fleet without
reading a manifest per point. The RPO is the VM's effective backup policy (its override, its
tier, or the default tier), as the executor uses it to decide what is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select

from corral.engines.backup import Policy
from corral.errors import ValidationError
from corral.store import models as m
from corral.store.db import Database


class RPOVerdict(StrEnum):
    """Where a VM stands against its recovery point objective."""

    missed = "missed"  # its newest point is older than the RPO
    never = "never"  # backed up by policy, but no restore point yet
    met = "met"  # its newest point is within the RPO
    rebuilt = "rebuilt"  # its tier rebuilds it from a recipe: nothing to back up
    no_policy = "no_policy"  # its tier is not in the policy: fix the policy or the VM


#: The order a page lists them in: the broken promises first.
ORDER = tuple(RPOVerdict)


@dataclass(frozen=True, slots=True)
class VMBackupStatus:
    vm: str
    uuid: str
    tier: str | None
    rpo_minutes: int | None
    last_point: str | None
    last_taken_at: datetime | None
    #: How old the newest point is, in minutes (None: no point).
    age_minutes: float | None
    verdict: RPOVerdict
    #: Why, for the verdicts that need a sentence (no policy).
    detail: str = ""


def rpo_status(db: Database, policy: Policy, now: datetime) -> list[VMBackupStatus]:
    """Every VM the inventory knows (templates and deleted ones left out), broken promises
    first, then by name."""
    newest = (
        select(m.BackupPointRow.vm_uuid, func.max(m.BackupPointRow.taken_at).label("at"))
        .group_by(m.BackupPointRow.vm_uuid)
        .subquery()
    )
    points = select(m.BackupPointRow.vm_uuid, m.BackupPointRow.id, m.BackupPointRow.taken_at).join(
        newest,
        (newest.c.vm_uuid == m.BackupPointRow.vm_uuid) & (newest.c.at == m.BackupPointRow.taken_at),
    )
    vms = select(m.VM.uuid, m.VM.name, m.VM.protection_tier).where(
        m.VM.deleted_at.is_(None), m.VM.is_template.is_(False)
    )
    with db.session() as s:
        last = {uuid: (pid, at) for uuid, pid, at in s.execute(points)}
        rows = s.execute(vms).all()
    found = [_status(uuid, name, tier, last.get(uuid), policy, now) for uuid, name, tier in rows]
    return sorted(found, key=lambda v: (ORDER.index(v.verdict), v.vm))


def _status(
    uuid: str,
    name: str,
    tier: str | None,
    last: tuple[str, datetime] | None,
    policy: Policy,
    now: datetime,
) -> VMBackupStatus:
    point, at = last if last else (None, None)
    age = (now - at).total_seconds() / 60 if at else None
    try:
        eff = policy.for_vm(name, tier)
    except ValidationError as exc:
        return VMBackupStatus(name, uuid, tier, None, point, at, age, RPOVerdict.no_policy,
                              exc.message)  # fmt: skip
    rpo = eff.rules.rpo_minutes
    if not eff.rules.backed_up:
        verdict = RPOVerdict.rebuilt
    elif age is None:
        verdict = RPOVerdict.never
    else:
        verdict = RPOVerdict.met if age < rpo else RPOVerdict.missed
    return VMBackupStatus(name, uuid, eff.tier, rpo, point, at, age, verdict)
