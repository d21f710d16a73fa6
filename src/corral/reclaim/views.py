"""How a reclamation case reads: its rule view, the money it saved, its typed record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import UTC, date, datetime
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


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """One reclamation case as every interface shows it: the VM, the state, the money."""

    id: int
    vm: str
    vm_uuid: str
    host: str | None
    state: State
    category: str
    reason: str
    owner: str | None
    department: str | None
    flagged_by: str
    flagged_at: datetime
    notified_to: str | None
    respond_by: datetime | None
    extended_until: date | None
    extend_reason: str | None
    archive_snapshot: str | None
    deleted_volumes: tuple[str, ...]
    #: The step claimed and not yet committed (a crash left it, or it is running now).
    pending: Step | None
    currency: str
    monthly_cost: float
    monthly_saving_off: float
    #: Money saved so far, and the monthly saving at the case's current state.
    realized: float
    saving_now_monthly: float
    #: What the detectors measured (free-form per detector, kept as flagged).
    evidence: Mapping[str, Any]
    #: The next step due, or why the case waits (None when no policy was given).
    next: str | None = None


@dataclass(frozen=True, slots=True)
class CaseApproval:
    step: Step
    approver: str
    at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """A reclamation event of the VM (of any of its cases)."""

    at: datetime
    kind: str
    case: int | None
    by: str | None
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CaseDetail(CaseRecord):
    """A case with its approvals and its VM's reclamation history, oldest first."""

    approvals: tuple[CaseApproval, ...] = ()
    history: tuple[CaseEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Savings:
    """Savings realized so far and the monthly rate now, in total and per case."""

    currency: str
    realized: float
    monthly_now: float
    cases: tuple[CaseRecord, ...]


def case_view(
    c: m.ReclaimCase, now: datetime | None = None, policy: Policy | None = None
) -> CaseRecord:
    now = now or datetime.now(UTC)
    saved, rate = realized_saving(c, now)
    nxt = None
    if policy is not None and not c.pending:
        decision = next_step(rule_view(c), policy, now)
        if isinstance(decision, Due):
            nxt = f"{decision.step} is due"
        elif isinstance(decision, Waiting):
            nxt = decision.reason
    return CaseRecord(
        id=c.id,
        vm=c.vm_name,
        vm_uuid=c.vm_uuid,
        host=c.host_name,
        state=State(c.state),
        category=c.category,
        reason=c.reason,
        owner=c.owner,
        department=c.department,
        flagged_by=c.flagged_by,
        flagged_at=c.flagged_at,
        notified_to=c.notified_to,
        respond_by=c.respond_by,
        extended_until=c.extended_until,
        extend_reason=c.extend_reason,
        archive_snapshot=c.archive_snapshot,
        deleted_volumes=tuple(c.deleted_volumes or ()),
        pending=Step(c.pending["step"]) if c.pending else None,
        currency=c.currency,
        monthly_cost=c.monthly_cost,
        monthly_saving_off=c.monthly_saving_off,
        realized=saved,
        saving_now_monthly=rate,
        evidence=c.evidence or {},
        next=nxt,
    )


def case_detail(c: m.ReclaimCase, now: datetime, policy: Policy) -> CaseDetail:
    """The case with its approvals; its ``history`` comes from the event log (queries.case)."""
    base = case_view(c, now, policy)
    approvals = tuple(
        CaseApproval(Step(a.step), a.approver, a.at, a.note or "") for a in c.approvals
    )
    fields = {f.name: getattr(base, f.name) for f in dataclass_fields(CaseRecord)}
    return CaseDetail(**fields, approvals=approvals)
