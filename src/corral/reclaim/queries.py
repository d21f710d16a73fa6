"""Reading the reclamation cases: lists, one case with its approvals and history, savings."""

from __future__ import annotations

import secrets
from dataclasses import replace

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from corral.domain.text import bad_character
from corral.engines.reclaim import OPEN
from corral.reclaim.env import ReclaimEnv, token_hash
from corral.reclaim.steps import HYPERVISOR_STEPS, STEPS
from corral.reclaim.views import (
    CaseDetail,
    CaseEvent,
    CaseRecord,
    Savings,
    case_detail,
    case_view,
)
from corral.store import models as m


def cases(
    env: ReclaimEnv, *, state: str | None = None, open_only: bool = False
) -> list[CaseRecord]:
    """Returns every case (or those in ``state``, or the open ones) with its next step."""
    with env.db.session() as s:
        q = select(m.ReclaimCase)
        if state:
            q = q.where(m.ReclaimCase.state == state)
        if open_only:
            q = q.where(m.ReclaimCase.state.in_([str(x) for x in OPEN]))
        rows = s.scalars(q.order_by(m.ReclaimCase.id)).unique().all()
        return [case_view(c, env.now, env.policy) for c in rows]


def case(env: ReclaimEnv, case_id: int) -> CaseDetail:
    """Returns one case with its approvals and its VM's reclamation history."""
    with env.db.session() as s:
        detail = case_detail(env.case_row(s, case_id), env.now, env.policy)
    return replace(detail, history=tuple(history(env, detail.vm_uuid)))


def history(env: ReclaimEnv, vm_uuid: str) -> list[CaseEvent]:
    """The VM's reclamation events (of every case it had), oldest first."""
    return [
        CaseEvent(
            at=e.at,
            kind=e.kind,
            case=e.details.get("case"),
            by=e.details.get("by"),
            details={k: v for k, v in e.details.items() if k not in ("case", "by")},
        )
        for e in reversed(env.inv.events(vm=vm_uuid, limit=1000))
        if "case" in (e.details or {})
    ]


def savings(env: ReclaimEnv) -> Savings:
    """Savings actually realized so far, and the monthly rate now, per case and in total."""
    rows = tuple(cases(env))
    realized = round(sum(r.realized for r in rows), 2)
    monthly = round(sum(r.saving_now_monthly for r in rows), 2)
    currency = rows[0].currency if rows else env.model.currency
    return Savings(currency=currency, realized=realized, monthly_now=monthly, cases=rows)


def case_for_token(env: ReclaimEnv, token: str) -> int | None:
    """The case whose e-mailed response token this is (only its SHA-256 is stored)."""
    if not 20 <= len(token) <= 128 or bad_character(token):
        return None
    digest = token_hash(token)
    with env.db.session() as s:
        c = s.scalars(
            select(m.ReclaimCase).where(m.ReclaimCase.response_token_hash == digest)
        ).first()
        if c is None or not secrets.compare_digest(c.response_token_hash or "", digest):
            return None
        return c.id


def hosts_behind(s: Session) -> set[str]:
    """Hosts a committed step changed after their last sync: a run killed before its sync.

    ``run`` syncs them at its end, so the inventory catches up with the next run.
    """
    kinds = [STEPS[step].event_kind for step in HYPERVISOR_STEPS]
    rows = s.execute(
        select(m.Host.name)
        .join(m.Event, m.Event.host_name == m.Host.name)
        .where(
            m.Event.kind.in_(kinds),
            or_(m.Host.last_sync_at.is_(None), m.Event.at >= m.Host.last_sync_at),
        )
        .distinct()
    )
    return set(rows.scalars())
