"""Backup planning over HTTP: the policy, the staggered schedule (a job), coverage, patch windows.

The fleet is named as for planning (a fleet document, with the backup keys of
docs/fleet-format.md, or ``live: true``). The answers are the backup service's
results, the shape of ``corral backup ... -o json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from corral.api.deps import Actor, InventoryDep, Reader
from corral.api.problems import error_responses
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.api.routes.plan import FleetRequest, snapshot
from corral.config import Settings
from corral.services import backup
from corral.services.jobs import JobKind, Progress

router = APIRouter(prefix="/api/v1/backup", tags=["backup"])

Day = Annotated[str, StringConstraints(pattern=r"^(mon|tue|wed|thu|fri|sat|sun)$")]


# -- answers -----------------------------------------------------------------------------
class TierOut(BaseModel):
    tier: str
    rpo_minutes: int
    rto_minutes: int
    restore_from: str = Field(description="local, repository or offsite (from the RTO).")
    consistency: str
    retention: dict[str, int]
    window: str | None
    rebuild: str | None = Field(description="Set: no backup, rebuilt from this recipe.")


class VMPolicyOut(BaseModel):
    vm: str
    tier: str
    origin: str
    rpo_minutes: int
    rto_minutes: int
    restore_from: str
    consistency: str
    backed_up: bool


class PolicyOut(BaseModel):
    source: str
    default_tier: str
    tiers: list[TierOut]
    vms: list[VMPolicyOut]


class SummaryOut(BaseModel):
    vms: int
    scheduled: int
    misses: int
    rebuilt: int
    without_host: int
    hosts: int
    datastores: int
    peak_host_utilisation: float
    peak_datastore_utilisation: float
    measured_change_rates: int
    seconds: float


class ScheduledOut(BaseModel):
    vm: str
    tier: str
    host: str
    datastore: str
    rpo_minutes: int
    runs_per_day: int
    duration_minutes: int
    mib_s: int
    gib_per_run: float
    starts: list[str] = Field(description="Start times of the day's runs, HH:MM.")
    change_source: str


class FixOut(BaseModel):
    kind: str = Field(description="bandwidth, window, job-rate or lower-tier.")
    target: str
    mib_s: int
    text: str


class MissOut(BaseModel):
    vm: str
    tier: str
    host: str
    datastore: str
    rpo_minutes: int
    runs_per_day: int
    duration_minutes: int
    mib_s: int
    gib_per_run: float
    reason: str = Field(description="changes-too-fast or no-room.")
    text: str
    fixes: list[FixOut]


class RebuiltOut(BaseModel):
    vm: str
    tier: str
    recipe: str


class BackupPlanOut(BaseModel):
    summary: SummaryOut
    slot_minutes: int
    scheduled: list[ScheduledOut]
    misses: list[MissOut]
    rebuilt: list[RebuiltOut]
    without_host: list[str]
    notes: list[str]


class UncoveredOut(BaseModel):
    vm: str
    tier: str | None
    reason: str
    text: str


class CoverageOut(BaseModel):
    vms: int
    covered: int
    uncovered: list[UncoveredOut]
    rebuilt: int


class PatchSlotOut(BaseModel):
    vm: str
    host: str
    day: str
    start: str
    start_minute: int
    minutes: int


class PatchPlanOut(BaseModel):
    window: str
    days: list[str]
    per_host: int
    slots: list[PatchSlotOut]
    unplaced: list[str]


# -- requests ----------------------------------------------------------------------------
class BackupPlanRequest(FleetRequest):
    """The fleet to plan backups for (live: change rates from the metrics history)."""


class PatchRequest(FleetRequest):
    window: str = Field(default="01:00-05:00", max_length=16, description="e.g. 22:00-04:00")
    days: list[Day] = Field(default=list(backup.DAYS), min_length=1, max_length=7)
    per_host: int = Field(default=1, ge=1, le=1000)
    minutes: int = Field(default=30, ge=1, le=1440)


# -- the work ----------------------------------------------------------------------------
def _plan_result(params: FleetRequest, state: Any) -> backup.PlanResult:
    settings: Settings = state.settings
    metrics = backup.recorded_metrics(settings) if params.live else None
    fleet = snapshot(params, state.inventory)
    return backup.plan(fleet, backup.load_policy(settings), metrics)


def _plan(params: BackupPlanRequest, state: Any, _progress: Progress) -> BackupPlanOut:
    return BackupPlanOut.model_validate(_plan_result(params, state).to_dict())


PLAN = JobKind("backup.plan", BackupPlanRequest, _plan)
JOB_KINDS = (PLAN,)


# -- routes ------------------------------------------------------------------------------
@router.get("/policy", response_model=PolicyOut, responses=error_responses(401, 422))
def policy(request: Request, _reader: Reader) -> PolicyOut:
    """Each tier's RPO, RTO, retention, consistency and window (the effective policy file)."""
    view = backup.policy_view(backup.load_policy(request.app.state.settings))
    return PolicyOut.model_validate(view.to_dict())


@router.post(
    "/plan",
    status_code=202,
    response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)
def plan(body: BackupPlanRequest, jobs: JobsDep, actor: Actor, response: Response) -> JobPublic:
    """The day's staggered backup schedule: a job whose result is a BackupPlanOut."""
    return accept(jobs, PLAN, body, actor, response)


@router.post("/coverage", response_model=CoverageOut, responses=error_responses(401, 404, 413, 422))
def coverage(body: BackupPlanRequest, request: Request, _reader: Reader) -> CoverageOut:
    """VMs with no planned backup meeting their RPO, and why."""
    cov = backup.coverage(_plan_result(body, request.app.state))
    return CoverageOut.model_validate(cov.to_dict())


@router.post(
    "/patch-windows", response_model=PatchPlanOut, responses=error_responses(404, 413, 422)
)
def patch_windows(body: PatchRequest, inv: InventoryDep) -> PatchPlanOut:
    """A weekly patch slot per VM, staggered per host; anti-affinity peers never together."""
    result = backup.patch_windows(
        snapshot(body, inv), body.window, body.days, body.per_host, body.minutes
    )
    return PatchPlanOut.model_validate(result.to_dict())
