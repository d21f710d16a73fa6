"""How a reclamation case reads: its rule view, the money it saved, its public dict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.engines.reclaim import OFFLINE, CaseView, Due, Policy, State, Step, Waiting, next_step
from corral.store import models as m

DAYS_PER_MONTH = 30.4375


def rule_view(c: m.ReclaimCase) -> CaseView:
    approvals: dict[Step, set[str]] = {}
    for a in c.approvals:
        approvals.setdefault(Step(a.step), set()).add(a.approver)
    return CaseView(
        state=State(c.state),
        flagged_at=c.flagged_at,
        flagged_by=c.flagged_by,
        notified_at=c.notified_at,
        respond_by=c.respond_by,
        confirmed_at=c.confirmed_at,
        quarantined_at=c.quarantined_at,
        archived_at=c.archived_at,
        approvals={k: frozenset(v) for k, v in approvals.items()},
    )


def _months(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None or end <= start:
        return 0.0
    return (end - start).total_seconds() / 86400 / DAYS_PER_MONTH


def realized_saving(c: m.ReclaimCase, now: datetime) -> tuple[float, float]:
    """(money saved so far, monthly saving now): off-time at the powered-off rate, then all."""
    off_end = c.deleted_at or (c.closed_at if c.quarantined_at else None) or now
    saved = c.monthly_saving_off * _months(c.quarantined_at, off_end)
    saved += c.monthly_cost * _months(c.deleted_at, now)
    if c.state == State.deleted:
        rate = c.monthly_cost
    elif c.state in OFFLINE:
        rate = c.monthly_saving_off
    else:
        rate = 0.0
    return round(saved, 2), round(rate, 2)


def case_view(
    c: m.ReclaimCase, now: datetime | None = None, policy: Policy | None = None
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    saved, rate = realized_saving(c, now)
    view: dict[str, Any] = {
        "id": c.id,
        "vm": c.vm_name,
        "vm_uuid": c.vm_uuid,
        "host": c.host_name,
        "state": c.state,
        "category": c.category,
        "reason": c.reason,
        "owner": c.owner,
        "department": c.department,
        "flagged_by": c.flagged_by,
        "flagged_at": c.flagged_at.isoformat(),
        "notified_to": c.notified_to,
        "respond_by": c.respond_by.isoformat() if c.respond_by else None,
        "extended_until": c.extended_until.isoformat() if c.extended_until else None,
        "extend_reason": c.extend_reason,
        "archive_snapshot": c.archive_snapshot,
        "deleted_volumes": list(c.deleted_volumes or []),
        "pending": c.pending["step"] if c.pending else None,
        "currency": c.currency,
        "monthly_cost": c.monthly_cost,
        "monthly_saving_off": c.monthly_saving_off,
        "realized": saved,
        "saving_now_monthly": rate,
        "evidence": c.evidence,
    }
    if policy is not None and not c.pending:
        decision = next_step(rule_view(c), policy, now)
        view["next"] = (
            f"{decision.step} is due"
            if isinstance(decision, Due)
            else decision.reason
            if isinstance(decision, Waiting)
            else None
        )
    return view
