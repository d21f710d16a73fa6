"""The reclamation workflow over HTTP: cases, people's steps, the scheduler, savings.

Every write needs a bearer token, whose name is recorded as the actor, and so does every read
(cases name their owner and the address the notice went to), except
``POST /respond``: there the token e-mailed to the VM's owner is the
authorization, and a wrong one is simply "not found".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from corral.api.deps import ReclaimDep, audited_as_owner, case_target, require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.schemas import (
    ReclaimAnswer,
    ReclaimApprove,
    ReclaimCancel,
    ReclaimExtend,
    ReclaimFlag,
    ReclaimRespond,
    ReclaimRun,
    ReclaimRunResult,
)
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.domain.reclaim import State
from corral.reclaim.views import CaseDetail, CaseRecord, Savings

router = APIRouter(prefix="/api/v1/reclaim", tags=["reclaim"])

CaseId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The case number.")]


READ = error_responses(401, 404, 422)
#: A step on a case: the case may not exist, its state may forbid the step, a host may not answer.
STEP = error_responses(401, 404, 409, 413, 422, 502, 503)


@router.get("/cases", response_model=Page[CaseRecord], responses=READ)
def list_cases(
    svc: ReclaimDep,
    who: Annotated[Principal, require(Perm.vm_read)],
    state: Annotated[State | None, Query(description="Only cases in this state.")] = None,
    open_only: Annotated[
        bool, Query(alias="open", description="Only cases not yet closed.")
    ] = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[Any]:
    rows = svc.cases(state=state.value if state else None, open_only=open_only)
    rows = [c for c in rows if who.sees(Perm.vm_read, c.department)]
    return paginate(sorted(rows, key=lambda c: c.id), lambda c: (c.id,), limit, cursor)


@router.get("/cases/{case_id}", response_model=CaseDetail, responses=READ)
def get_case(
    case_id: CaseId, svc: ReclaimDep, _who: Annotated[Principal, require(Perm.vm_read, case_target)]
) -> CaseDetail:
    return svc.case(case_id)


@router.post(
    "/cases",
    response_model=CaseRecord,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 404, 409, 413, 422),
)
def flag(
    body: ReclaimFlag, svc: ReclaimDep, who: Annotated[Principal, require(Perm.reclaim_flag)]
) -> CaseRecord:
    return svc.flag(body.vm, category=body.category, reason=body.reason, actor=who.user)


@router.post("/cases/{case_id}/confirm", response_model=CaseRecord, responses=STEP)
def confirm(
    case_id: CaseId,
    svc: ReclaimDep,
    who: Annotated[Principal, require(Perm.reclaim_respond, case_target)],
) -> CaseRecord:
    return svc.confirm(case_id, who.user)


@router.post("/cases/{case_id}/extend", response_model=CaseRecord, responses=STEP)
def extend(
    case_id: CaseId,
    body: ReclaimExtend,
    svc: ReclaimDep,
    who: Annotated[Principal, require(Perm.reclaim_respond, case_target)],
) -> CaseRecord:
    return svc.extend(case_id, body.until, body.reason, who.user)


@router.post("/cases/{case_id}/approve", response_model=CaseDetail, responses=STEP)
def approve(
    case_id: CaseId,
    body: ReclaimApprove,
    svc: ReclaimDep,
    who: Annotated[Principal, require(Perm.reclaim_decide, case_target)],
) -> CaseDetail:
    svc.approve(case_id, body.step, who.user, body.note)
    return svc.case(case_id)


@router.post("/cases/{case_id}/restore", response_model=CaseRecord, responses=STEP)
def restore(
    case_id: CaseId,
    svc: ReclaimDep,
    who: Annotated[Principal, require(Perm.reclaim_decide, case_target)],
) -> CaseRecord:
    return svc.restore(case_id, who.user)


@router.post("/cases/{case_id}/cancel", response_model=CaseRecord, responses=STEP)
def cancel(
    case_id: CaseId,
    body: ReclaimCancel,
    svc: ReclaimDep,
    who: Annotated[Principal, require(Perm.reclaim_decide, case_target)],
) -> CaseRecord:
    return svc.cancel(case_id, who.user, body.reason)


@router.post("/run", response_model=ReclaimRunResult, responses=error_responses(401, 413, 422))
def run(
    svc: ReclaimDep,
    _who: Annotated[Principal, require(Perm.reclaim_flag)],
    body: ReclaimRun | None = None,
) -> dict[str, Any]:
    """Take every step that is due; ``dry_run`` says what would be done."""
    dry = body.dry_run if body else False
    outcomes = [
        {"case": o.case_id, "vm": o.vm, "step": o.step, "result": o.result, "detail": o.detail}
        for o in svc.run(dry_run=dry)
    ]
    return {"dry_run": dry, "mail": svc.mail_line, "outcomes": outcomes}


@router.get("/savings", response_model=Savings, responses=error_responses(401))
def savings(svc: ReclaimDep, _who: Annotated[Principal, require(Perm.ops_read)]) -> Savings:
    return svc.savings()


@router.post(
    "/respond",
    response_model=ReclaimAnswer,
    responses=error_responses(404, 409, 413, 422, 502, 503),
    dependencies=[audited_as_owner("POST /api/v1/reclaim/respond")],
)
def respond(body: ReclaimRespond, svc: ReclaimDep) -> ReclaimAnswer:
    """The owner keeps (extend) or gives up (confirm) the VM; the e-mailed token authorizes."""
    case = svc.respond(body.token, body.action, None, body.until, body.reason)
    return ReclaimAnswer(
        id=case.id, vm=case.vm, state=case.state, extended_until=case.extended_until
    )
