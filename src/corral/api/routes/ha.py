"""HA admission control over HTTP: how many host failures a fleet tolerates, and until when.

The fleet is named as for planning (a fleet document or ``live: true``); the
answer is the HA service's check, as ``corral ha check -o json`` gives it, with
the policy's own figures under ``details``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as FastPath
from pydantic import BaseModel, Field

from corral.api.deps import InventoryDep, require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.api.routes.plan import FleetRequest, HistoryPointIn, Name, history_of, snapshot
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.services import ha, ha_live_views
from corral.services.audit import Actor, acting_as
from corral.services.ha_drill import DrillService, drill_runs
from corral.services.ha_maintenance import MaintenanceService
from corral.services.jobs import JobKind, Progress

router = APIRouter(prefix="/api/v1/ha", tags=["ha"])

HAPolicy = enum.StrEnum("HAPolicy", {name: name for name in ha.policies()})  # type: ignore[misc]


class HACheckRequest(FleetRequest):
    policy: HAPolicy = Field(default=HAPolicy("exact"), description="The admission policy.")
    failures: int = Field(default=1, ge=0, le=64, description="Host failures to tolerate (K).")
    failover_hosts: list[Name] = Field(default=[], max_length=1000)
    cpu_pct: float | None = Field(default=None, ge=0, le=100)
    memory_pct: float | None = Field(default=None, ge=0, le=100)
    growth_per_month: float | None = Field(
        default=None, ge=-1, le=10, description="Demand growth per month (0.03 = 3 %)."
    )
    as_of: date | None = Field(default=None, description="Start of the growth projection.")
    history: list[HistoryPointIn] | None = Field(
        default=None, max_length=1_000_000, description="Its cluster trend gives the growth."
    )


class GrowthOut(BaseModel):
    growth_per_month: float
    source: ha.GrowthSource
    start: date
    breaks_on: date | None = Field(description="None: not within five years.")


class HACheckOut(BaseModel):
    policy: str
    failures_to_tolerate: int
    tolerated_host_failures: int
    admission_ok: bool
    details: dict[str, Any] = Field(description="The policy's own figures (slots, lost VMs...).")
    growth: GrowthOut | None


@router.post("/check", response_model=HACheckOut, responses=error_responses(404, 413, 422))
def check(
    body: HACheckRequest, inv: InventoryDep, _who: Annotated[Principal, require(Perm.fleet_analyse)]
) -> HACheckOut:
    """Tolerated host failures under a policy, what would not come back, when HA breaks."""
    result = ha.check(
        snapshot(body, inv).fleet,
        str(body.policy),
        body.failures,
        failover_hosts=body.failover_hosts,
        cpu_pct=body.cpu_pct,
        memory_pct=body.memory_pct,
        growth_per_month=body.growth_per_month,
        history=history_of(body.history) if body.history else None,
        as_of=body.as_of,
    )
    report, growth = result.report, result.growth
    return HACheckOut(
        policy=report.policy,
        failures_to_tolerate=report.failures_to_tolerate,
        tolerated_host_failures=report.tolerated_host_failures,
        admission_ok=report.admission_ok,
        details=dict(report.details),
        growth=GrowthOut(
            growth_per_month=growth.growth_per_month,
            source=growth.source,
            start=growth.start,
            breaks_on=growth.breaks_on,
        )
        if growth
        else None,
    )


class HostStateOut(BaseModel):
    name: str
    state: str
    maintenance: bool


class VMStateOut(BaseModel):
    name: str
    state: str
    host: str
    target: str | None


class HAEventOut(BaseModel):
    t: float
    kind: str
    host: str | None
    vm: str | None
    detail: str
    alert: bool


class HAStatusOut(BaseModel):
    manager: str
    leader: str | None = Field(description="The instance that saved the last round.")
    updated_at: str | None
    fencing_held: bool
    hosts: list[HostStateOut]
    vms: list[VMStateOut]
    events: list[HAEventOut]


class PlanEntryOut(BaseModel):
    failed_host: str
    vm: str
    target: str


class HAPlanOut(BaseModel):
    source: str = Field(description="stored (the manager's) or inventory (computed now).")
    entries: list[PlanEntryOut]


@router.get("/status", response_model=HAStatusOut)
def live_status(
    inv: InventoryDep, _who: Annotated[Principal, require(Perm.fleet_analyse)]
) -> HAStatusOut:
    """The live HA manager: each host's and protected VM's state, the leader, latest events."""
    return HAStatusOut.model_validate(ha_live_views.status(inv.db).to_dict())


@router.get("/plan", response_model=HAPlanOut)
def live_plan(
    inv: InventoryDep, _who: Annotated[Principal, require(Perm.fleet_analyse)]
) -> HAPlanOut:
    """The failover plan: for each host that could fail, where each of its VMs restarts."""
    return HAPlanOut.model_validate(ha_live_views.plan(inv.db, inv).to_dict())


# --- maintenance and drills (issue 11 items 4, 5): both run as jobs ------------------------

HostName = Annotated[str, FastPath(min_length=1, max_length=255, description="The host's name.")]


class MoveOut(BaseModel):
    vm: str
    source: str
    target: str | None
    outcome: str = Field(description="moved | failed (see detail) | skipped | cancelled")
    detail: str
    seconds: float | None


class MaintenanceOut(BaseModel):
    host: str
    state: str = Field(
        description="entering (a VM is still on it) | in (empty) | out | aborting | aborted"
    )
    moves: list[MoveOut]


class DrillRequest(BaseModel):
    host: Name = Field(description="The host to fail on purpose (drills.allow of the policy).")


class DrillVMOut(BaseModel):
    vm: str
    planned: str | None
    actual: str | None
    restart_s: float | None = Field(description="Seconds from the kill to running again.")
    rto_s: float
    rto_met: bool
    why: str


class DrillOut(BaseModel):
    host: str
    killed_at: float = Field(description="The kill, on the manager's clock (epoch seconds).")
    detection_s: float | None
    fence_s: float | None
    ended_by: str
    vms: list[DrillVMOut]
    not_recovered: list[str]
    events: int
    unprotected: list[str] = Field(description="VMs without protection: down by design.")
    all_met: bool


class _Submitted(BaseModel):
    """Who submitted the job (set by the route): its writes are audited as theirs."""

    by: str
    roles: str


class MaintenanceJob(_Submitted):
    host: Name


class DrillJob(DrillRequest, _Submitted):
    pass


def _actor(params: _Submitted, kind: str) -> Actor:
    return Actor(user=params.by, roles=params.roles, origin=f"api job {kind}")


def _enter(params: MaintenanceJob, state: Any, progress: Progress) -> MaintenanceOut:
    service = MaintenanceService(state.inventory, state.settings, by=f"api:{params.by}")
    with acting_as(_actor(params, ENTER_KIND)):
        report = service.enter(params.host, progress)
    return MaintenanceOut.model_validate(report.to_dict())


def _drill(params: DrillJob, state: Any, progress: Progress) -> DrillOut:
    with acting_as(_actor(params, DRILL_KIND)):
        report = DrillService(state.inventory, state.settings).run(params.host, progress)
    return DrillOut.model_validate(report.to_dict())


ENTER_KIND, DRILL_KIND = "ha.maintenance.enter", "ha.drill"
ENTER = JobKind(ENTER_KIND, MaintenanceJob, _enter)
DRILL = JobKind(DRILL_KIND, DrillJob, _drill)
JOB_KINDS = (ENTER, DRILL)


@router.post(
    "/maintenance/{host}/enter", status_code=202, response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 422)},
)  # fmt: skip
def maintenance_enter(
    host: HostName, jobs: JobsDep, who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:  # fmt: skip
    """Mark the host in maintenance and live-migrate its protected VMs: a job whose result
    is a MaintenanceOut (each VM moved, or why not)."""
    job = MaintenanceJob(host=host, by=who.user, roles=who.role_names)
    return accept(jobs, ENTER, job, who.user, response)


@router.post(
    "/maintenance/{host}/abort", response_model=MaintenanceOut,
    responses=error_responses(401, 409, 422),
)  # fmt: skip
def maintenance_abort(
    host: HostName, request: Request, who: Annotated[Principal, require(Perm.fleet_operate)]
) -> MaintenanceOut:
    """Stop the host's evacuation: no migration is begun any more, those in flight are
    cancelled. "aborting": the running job stops at its next step (its result tells how
    it ended); "aborted": no run was going on and the host is back in service now."""
    state = request.app.state
    service = MaintenanceService(state.inventory, state.settings, by=f"api:{who.user}")
    report = service.abort(host, wait=False)
    return MaintenanceOut.model_validate(report.to_dict())


@router.post(
    "/maintenance/{host}/exit", response_model=MaintenanceOut,
    responses=error_responses(401, 409, 422),
)  # fmt: skip
def maintenance_exit(
    host: HostName, request: Request, _who: Annotated[Principal, require(Perm.fleet_operate)]
) -> MaintenanceOut:
    """Clear the host's maintenance mark."""
    state = request.app.state
    report = MaintenanceService(state.inventory, state.settings).exit(host)
    return MaintenanceOut.model_validate(report.to_dict())


@router.post(
    "/drills", status_code=202, response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)  # fmt: skip
def drill(
    body: DrillRequest, jobs: JobsDep, who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:  # fmt: skip
    """Fail a host on purpose and measure the HA manager's recovery: a job whose result is
    a DrillOut (detection, fencing, each VM's restart against its RTO)."""
    job = DrillJob(host=body.host, by=who.user, roles=who.role_names)
    return accept(jobs, DRILL, job, who.user, response)


class DrillRunOut(BaseModel):
    id: int
    host: str
    scheduled: bool = Field(description="Started by the manager's drill schedule.")
    started_at: datetime
    ended_at: datetime | None
    outcome: str = Field(description="running | met | missed | failed | abandoned")
    detail: str


@router.get("/drills", response_model=Page[DrillRunOut])
def drill_list(
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[DrillRunOut]:
    """The drills run so far, manual and scheduled, newest first."""
    runs = [DrillRunOut.model_validate(vars(r)) for r in drill_runs(inv)]
    return paginate(runs, lambda r: (-r.id,), limit, cursor)
