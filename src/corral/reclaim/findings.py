"""Flag the VMs of sprawl findings: one case each, with the finding's evidence and money.

Used by ``corral reclaim flag-findings`` and the demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from corral.engines.reclaim import OPEN, State
from corral.engines.sprawl.model import Category, Finding
from corral.errors import ConflictError
from corral.reclaim.service import ReclaimService

#: Findings whose remedy is reclaiming the VM itself (orphaned disks are not VMs; snapshot
#: sprawl is cured by deleting snapshots; owner/purpose findings are governance, not waste).
FINDING_CATEGORIES = (Category.idle, Category.powered_off, Category.lease_expired)


@dataclass(frozen=True, slots=True)
class FlagRow:
    """What flagging one finding did; ``case`` is the case opened, if one was."""

    vm: str
    category: str
    monthly: float
    result: Literal["flagged", "would-flag", "skipped"]
    skipped_because: str | None  # "open case", "extension in force" or "refused"
    case: int | None
    detail: str


def flag_findings(
    svc: ReclaimService, findings: Sequence[Finding], actor: str, *, dry_run: bool = False
) -> list[FlagRow]:
    """Flag each finding's VM; one row per finding saying flagged, would-flag or skipped (why)."""
    held = held_vms(svc)
    return [_flag_one(svc, f, held.get(f.subject), actor, dry_run) for f in findings]


def held_vms(svc: ReclaimService) -> dict[str, tuple[str, str]]:
    """VMs that may not be flagged now: (why, detail) for an open case or an extension in force."""
    today = svc.now.date()
    held: dict[str, tuple[str, str]] = {}
    for c in svc.cases():
        if c.state in OPEN:
            held[c.vm_uuid] = ("open case", f"case {c.id} is {c.state}")
        elif c.state == State.extended and c.extended_until and c.extended_until >= today:
            detail = f"extended until {c.extended_until} (case {c.id})"
            held.setdefault(c.vm_uuid, ("extension in force", detail))
    return held


def _flag_one(
    svc: ReclaimService, f: Finding, held: tuple[str, str] | None, actor: str, dry_run: bool
) -> FlagRow:
    row = FlagRow(
        vm=f.subject_name,
        category=f.category.value,
        monthly=round(f.monthly_cost_held, 2),
        result="skipped",
        skipped_because=held[0] if held else None,
        case=None,
        detail=held[1] if held else "",
    )
    if held:
        return row
    reason = _summary(f)
    if dry_run:
        return replace(row, result="would-flag", detail=reason)
    try:
        case = svc.flag(
            f.subject, category=f.category.value, reason=reason, actor=actor, evidence=_evidence(f)
        )
    except ConflictError as exc:  # flagged or extended by someone else meanwhile
        return replace(row, skipped_because="refused", detail=exc.message)
    return replace(row, result="flagged", case=case.id, detail=reason)


def _summary(f: Finding) -> str:
    """One sentence for the case's reason (and the owner's e-mail): what was measured."""
    measures = ", ".join(f"{k} {v}" for k, v in f.evidence.measures.items())
    window = ""
    if f.evidence.window_start and f.evidence.window_end:
        window = f" over {f.evidence.window_start:%Y-%m-%d}..{f.evidence.window_end:%Y-%m-%d}"
    return f"{f.category.value.replace('_', ' ')}: {measures}{window}; {f.suggested_action}"[:1000]


def _evidence(f: Finding) -> dict[str, Any]:
    ev = f.evidence
    return {
        **dict(ev.measures),
        "window_start": ev.window_start.isoformat() if ev.window_start else None,
        "window_end": ev.window_end.isoformat() if ev.window_end else None,
        "confidence": round(f.confidence, 3),
        "monthly_cost_held": round(f.monthly_cost_held, 2),
        "detector": f.detector,
    }
