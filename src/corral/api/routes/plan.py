"""Capacity planning over HTTP: place, consolidate, rebalance, evacuate, what-if, forecast.

Every request names its fleet as the CLI does: a fleet document in ``fleet``
(the format of ``corral export --format fleet``, docs/fleet-format.md) or
``live: true`` for the live inventory's last sync. The answers are the planning
service's results, in the same shape as ``corral plan ... -o json``.

Consolidation can take seconds (CP-SAT), so it runs as a job: 202 and a job to
follow. The others answer at once; they change nothing, so they need no token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from corral.api.deps import InventoryDep, require
from corral.api.problems import error_responses
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.inventory.service import Inventory
from corral.services import planning
from corral.services.fleet import FleetSnapshot, live_fleet, parse_fleet_document
from corral.services.jobs import JobKind, Progress
from corral.services.planning_api import (
    History,
    HistoryPoint,
    HistoryResource,
    history_from_points,
)

router = APIRouter(prefix="/api/v1/plan", tags=["plan"])

Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Count = Annotated[int, Field(ge=1, le=100_000)]
MiB = Annotated[int, Field(ge=1, le=2**40)]
ERRORS = error_responses(404, 413, 422)


# -- requests ----------------------------------------------------------------------------
class FleetDocument(BaseModel):
    """A fleet document (docs/fleet-format.md): ``format: corral-fleet/1``, or an older one.

    Only the outline is checked here; each host, VM and volume is read by the fleet
    service, whose errors name the entry (``vms[3].memory_mib ...``).
    """

    model_config = ConfigDict(extra="forbid")

    format: Annotated[str, StringConstraints(max_length=64)] | None = None
    now: datetime | None = Field(default=None, description="The fleet's 'now' (sprawl ages).")
    settings: dict[str, Any] | None = None
    profiles: dict[str, Any] | None = None
    hosts: list[dict[str, Any]] = Field(default=[], max_length=100_000)
    vms: list[dict[str, Any]] = Field(default=[], max_length=1_000_000)
    volumes: list[dict[str, Any]] = Field(default=[], max_length=1_000_000)
    datastores: list[dict[str, Any]] = Field(default=[], max_length=100_000)


class FleetRequest(BaseModel):
    """The fleet to plan on: exactly one of a fleet document or ``live: true``."""

    model_config = ConfigDict(extra="forbid")

    fleet: FleetDocument | None = Field(
        default=None, description="A fleet document (format corral-fleet/1, or an older one)."
    )
    live: bool = Field(default=False, description="Plan on the live inventory's last sync.")

    @model_validator(mode="after")
    def _one_source(self) -> FleetRequest:
        if self.live == (self.fleet is not None):
            raise ValueError("give exactly one of 'fleet' (a fleet document) or 'live': true")
        return self


def snapshot(request: FleetRequest, inventory: Inventory) -> FleetSnapshot:
    """The fleet a request names (the document, or the live inventory)."""
    if request.fleet is not None:
        document = request.fleet.model_dump(mode="json", exclude_unset=True)
        return parse_fleet_document(document, "request body")
    return live_fleet(inventory)


class NewVMIn(BaseModel):
    name: Name
    vcpus: Count
    memory_mib: MiB
    profile: Name | None = None


class PlaceRequest(FleetRequest):
    vms: list[Name] = Field(default=[], max_length=10_000, description="Unplaced VMs of the fleet.")
    new: list[NewVMIn] = Field(default=[], max_length=10_000, description="VMs not in the fleet.")
    strategy: planning.PlacementStrategy = planning.PlacementStrategy.spread
    atomic: bool = Field(default=True, description="All or nothing for a multi-VM request.")


class ConsolidateRequest(FleetRequest):
    mode: planning.ConsolidationMode = planning.ConsolidationMode.auto
    failures: int | None = Field(default=None, ge=0, le=64, description="N+K reserve to keep.")
    time_limit_s: float = Field(default=10.0, gt=0, le=600, description="CP-SAT time limit.")


class RebalanceRequest(FleetRequest):
    max_migrations: int = Field(default=10, ge=1, le=10_000)


class EvacuateRequest(FleetRequest):
    hosts: list[Name] = Field(min_length=1, max_length=1000)
    keep_ha_reserve: bool = False


class AddVMsIn(BaseModel):
    count: Count
    vcpus: Count
    memory_mib: MiB
    profile: Name | None = None


class ReserveIn(BaseModel):
    project: Name
    count: Count
    vcpus: Count
    memory_mib: MiB


class WhatIfRequest(FleetRequest):
    add: list[AddVMsIn] = Field(default=[], max_length=1000)
    remove_hosts: list[Name] = Field(default=[], max_length=1000)
    reserve: list[ReserveIn] = Field(default=[], max_length=1000)

    def changes(self) -> list[planning.Change]:
        out: list[planning.Change] = [
            planning.AddVMs(a.count, a.vcpus, a.memory_mib, a.profile) for a in self.add
        ]
        out += [planning.RemoveHost(h) for h in self.remove_hosts]
        out += [
            planning.ReserveCapacity(r.project, r.count, r.vcpus, r.memory_mib)
            for r in self.reserve
        ]
        return out


class HistoryPointIn(BaseModel):
    """One row of a usage history (the CSV of ``--history``): epoch seconds or ISO 8601."""

    timestamp: datetime
    host: Name
    resource: HistoryResource
    value: float


def history_of(points: list[HistoryPointIn]) -> History:
    return history_from_points(
        HistoryPoint(p.timestamp, p.host, p.resource, p.value) for p in points
    )


class ForecastRequest(FleetRequest):
    history: list[HistoryPointIn] = Field(min_length=1, max_length=1_000_000)
    horizon_days: float = Field(default=365.0, gt=0, le=3650)
    failures: int | None = Field(default=None, ge=0, le=64)


# -- answers (the shape of ``corral plan ... -o json``) ------------------------------------
class RejectionOut(BaseModel):
    host: str
    filter: str
    reason: str


class RejectionsOut(BaseModel):
    counts: dict[str, int] = Field(description="Rejected hosts per filter.")
    hosts: list[RejectionOut]
    truncated: bool


class PlacementOutcomeOut(BaseModel):
    vm: str
    status: planning.PlacementStatus
    host: str | None = None
    score: float | None = None
    candidates: list[str] | None = Field(
        default=None, description="Hosts that would pass if other VMs moved away."
    )
    rejections: RejectionsOut


class PlacementOut(BaseModel):
    all_placed: bool
    outcomes: list[PlacementOutcomeOut]


class MoveOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    vm: str
    source: str | None = Field(alias="from", description="None: a new VM being placed.")
    to: str
    temporary: bool = Field(description="A hop through a third host to break a cycle.")


class LowerBoundOut(BaseModel):
    hosts: int
    by_resource: dict[str, int]
    anti_affinity: int


class ConsolidationOut(BaseModel):
    method: str
    optimal: bool | None
    active_hosts_before: int
    active_hosts_after: int
    lower_bound: LowerBoundOut
    migrations: int
    steps: list[MoveOut]
    schedule_complete: bool
    blocked_vms: list[str]
    hosts_to_power_off: list[str]
    unplaced_vms: list[str]
    notes: list[str]


class RebalanceOut(BaseModel):
    migrations: int
    max_load_before: float
    max_load_after: float
    load_stddev_before: float
    load_stddev_after: float
    steps: list[MoveOut]
    schedule_complete: bool


class EvacuationOut(BaseModel):
    hosts: list[str]
    complete: bool
    moves: list[MoveOut]
    unplaced_vms: list[str]
    reasons: dict[str, str] = Field(description="Why each unplaced VM found no host.")


class FleetSummaryOut(BaseModel):
    hosts: int
    active_hosts: int
    running_vms: int
    vcpu_allocated_pct: float
    memory_allocated_pct: float
    free_vcpus: float
    free_memory_mib: float
    host_lower_bound: int
    ha_tolerated_host_failures: int


class WhatIfOut(BaseModel):
    before: FleetSummaryOut
    after: FleetSummaryOut
    not_placed: list[str]
    notes: list[str]


class ExhaustionOut(BaseModel):
    scope: str = Field(description="A host's name, or 'cluster' (net of the HA reserve).")
    resource: str
    capacity: float
    current: float
    slope_per_day: float
    exhausted_at: datetime | None
    days_to_exhaustion: float | None
    method: str
    r2: float


class ForecastOut(BaseModel):
    failures: int
    horizon_days: float
    exhaustions: list[ExhaustionOut]


# -- the work of the consolidation job ---------------------------------------------------
def _consolidate(params: ConsolidateRequest, state: Any, _progress: Progress) -> ConsolidationOut:
    fleet = snapshot(params, state.inventory).fleet
    plan = planning.consolidate(
        fleet, params.mode, failures=params.failures, time_limit_s=params.time_limit_s
    )
    return ConsolidationOut.model_validate(plan.to_dict())


CONSOLIDATE = JobKind("plan.consolidate", ConsolidateRequest, _consolidate)


# -- rebalance --apply (issue 11 item 4): real live migrations, as a job ------------------


class RebalanceApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_migrations: int = Field(default=10, ge=1, le=1000)


class RebalanceApplyJob(RebalanceApplyRequest):
    """The request and who sent it (set by the route): the moves are audited as theirs."""

    by: str
    roles: str


class AppliedMoveOut(BaseModel):
    vm: str
    source: str
    target: str | None
    outcome: str = Field(description="moved | failed (see detail) | skipped | cancelled")
    detail: str
    seconds: float | None


class RebalanceApplyOut(BaseModel):
    state: str = Field(description="done | partial (see the moves) | aborted")
    planned: int
    max_load_before: float
    max_load_after: float
    moves: list[AppliedMoveOut]
    placement: dict[str, str] = Field(description="Where each VM that moved runs now.")


def _rebalance_apply(
    params: RebalanceApplyJob, state: Any, progress: Progress
) -> RebalanceApplyOut:
    from corral.services.audit import Actor, acting_as
    from corral.services.rebalance_apply import RebalanceApply

    actor = Actor(user=params.by, roles=params.roles, origin=f"api job {REBALANCE_APPLY_KIND}")
    service = RebalanceApply(state.inventory, state.settings, by=f"api:{params.by}")
    with acting_as(actor):
        report = service.apply(params.max_migrations, progress)
    return RebalanceApplyOut.model_validate(report.to_dict())


REBALANCE_APPLY_KIND = "plan.rebalance.apply"
REBALANCE_APPLY = JobKind(REBALANCE_APPLY_KIND, RebalanceApplyJob, _rebalance_apply)
JOB_KINDS = (CONSOLIDATE, REBALANCE_APPLY)


# -- routes ------------------------------------------------------------------------------
@router.post("/place", response_model=PlacementOut, responses=ERRORS)
def place(
    body: PlaceRequest, inv: InventoryDep, _who: Annotated[Principal, require(Perm.fleet_analyse)]
) -> PlacementOut:
    """Hosts for unplaced or new VMs, and for each host that was rejected, why."""
    new = [planning.NewVM(n.name, n.vcpus, n.memory_mib, n.profile) for n in body.new]
    report = planning.place_vms(
        snapshot(body, inv).fleet, body.vms, new, strategy=body.strategy, atomic=body.atomic
    )
    return PlacementOut(
        all_placed=report.all_placed,
        outcomes=[PlacementOutcomeOut.model_validate(o.to_dict()) for o in report.outcomes],
    )


@router.post(
    "/consolidate",
    status_code=202,
    response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)
def consolidate(
    body: ConsolidateRequest,
    jobs: JobsDep,
    who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:
    """Fewest active hosts with fewest migrations: a job whose result is a ConsolidationOut."""
    return accept(jobs, CONSOLIDATE, body, who.user, response)


@router.post("/rebalance", response_model=RebalanceOut, responses=ERRORS)
def rebalance(
    body: RebalanceRequest,
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
) -> RebalanceOut:
    """A few migrations that cool the hottest hosts."""
    plan = planning.rebalance(snapshot(body, inv).fleet, body.max_migrations)
    return RebalanceOut.model_validate(plan.to_dict())


@router.post(
    "/rebalance/apply", status_code=202, response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)  # fmt: skip
def rebalance_apply(
    body: RebalanceApplyRequest,
    jobs: JobsDep,
    who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:
    """Rebalance the live fleet now with live migrations: a job whose result is a
    RebalanceApplyOut (each move, or why it did not happen); cancel the job to abort."""
    job = RebalanceApplyJob(**body.model_dump(), by=who.user, roles=who.role_names)
    return accept(jobs, REBALANCE_APPLY, job, who.user, response)


@router.post("/evacuate", response_model=EvacuationOut, responses=ERRORS)
def evacuate(
    body: EvacuateRequest,
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
) -> EvacuationOut:
    """Every VM off the named hosts (maintenance) without overloading a receiver."""
    plan = planning.evacuate(
        snapshot(body, inv).fleet, body.hosts, keep_ha_reserve=body.keep_ha_reserve
    )
    return EvacuationOut.model_validate(plan.to_dict())


@router.post("/whatif", response_model=WhatIfOut, responses=ERRORS)
def whatif(
    body: WhatIfRequest, inv: InventoryDep, _who: Annotated[Principal, require(Perm.fleet_analyse)]
) -> WhatIfOut:
    """The fleet before and after more VMs, fewer hosts or capacity promised to a project."""
    result = planning.whatif(snapshot(body, inv).fleet, body.changes())
    return WhatIfOut.model_validate(result.to_dict())


@router.post("/forecast", response_model=ForecastOut, responses=ERRORS)
def forecast(
    body: ForecastRequest,
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
) -> ForecastOut:
    """Days until each host, and the cluster net of its HA reserve, runs out of CPU or memory."""
    report = planning.forecast(
        snapshot(body, inv).fleet,
        history_of(body.history),
        failures=body.failures,
        horizon_days=body.horizon_days,
    )
    return ForecastOut(
        failures=report.failures,
        horizon_days=report.horizon_days,
        exhaustions=[ExhaustionOut.model_validate(e.to_dict()) for e in report.exhaustions],
    )
