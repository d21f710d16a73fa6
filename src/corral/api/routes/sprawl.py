"""Sprawl over HTTP: findings on a fleet, the live report (a job), the detectors, the scenario.

Findings and the report name VMs' owners and what they hold, so they need a
token. The live report reads the inventory and the metrics history (seconds on
a large fleet): a job whose result is a SprawlReportOut, the figures of
``corral sprawl report -o json``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.api.deps import InventoryDep, require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.routes.cost import CostModelDep, get_cost_model_of, records
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.api.routes.plan import FleetRequest
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.errors import NotFoundError
from corral.reports.scorecard import Status
from corral.services import sprawl
from corral.services.backup import load_policy
from corral.services.jobs import JobKind, Progress
from corral.services.policy import configured_policy
from corral.services.sprawl_api import (
    Category,
    MetricsStore,
    RightSizeMode,
    RightSizingParams,
    settings_metrics_store,
)

router = APIRouter(prefix="/api/v1/sprawl", tags=["sprawl"])

Measure = float | int | str


class EvidenceOut(BaseModel):
    measures: dict[str, Measure]
    window_start: datetime | None
    window_end: datetime | None


class FindingOut(BaseModel):
    subject: str = Field(description="The VM's UUID, or an orphaned volume's path.")
    subject_name: str
    category: Category
    detector: str
    confidence: float = Field(ge=0, le=1)
    monthly_cost_held: float
    suggested_action: str
    also_matched: list[Category] = Field(description="Other categories it matched (counted once).")
    evidence: EvidenceOut


class InsufficientOut(BaseModel):
    subject: str
    subject_name: str
    detector: str
    reason: str


class FindingsOut(BaseModel):
    currency: str
    findings: list[FindingOut]
    insufficient: list[InsufficientOut] = Field(description="Cases a detector could not decide.")


class CategoryTotalOut(BaseModel):
    category: Category
    count: int
    monthly: float
    yearly: float
    counted_as_waste: bool


class SprawlSummaryOut(BaseModel):
    currency: str
    vms: int
    fleet_monthly_cost: float
    reclaimable_monthly: float
    rightsizing_monthly: float
    waste_monthly: float
    waste_yearly: float
    governance_at_risk_monthly: float
    reclaimable_vcpus: int
    reclaimable_memory_gib: float
    reclaimable_storage_gb: float
    oversized_vms: int
    undersized_vms: int
    insufficient_data: int
    categories: list[CategoryTotalOut]


class SignOut(BaseModel):
    number: int
    key: str
    title: str
    status: Status
    figures: dict[str, Measure]
    based_on: str


class CategoryMonthOut(BaseModel):
    count: int
    monthly: float


class MonthWasteOut(BaseModel):
    at: datetime
    vms: int
    waste: float
    at_risk: float
    by_category: dict[Category, CategoryMonthOut]


class SprawlReportOut(BaseModel):
    summary: SprawlSummaryOut
    findings: list[FindingOut]
    scorecard: list[SignOut]
    waste_over_time: list[MonthWasteOut]


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(default=30, ge=1, le=400, description="Metrics window in days.")


class ScenarioRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vms: int = Field(default=150, ge=1, le=1_000, description="Fleet size (its cost grows fast).")
    seed: int = Field(default=1, ge=0, le=2**31 - 1)


class AssumptionOut(BaseModel):
    name: str
    value: float
    source: str


class ScenarioOut(BaseModel):
    seed: int
    summary: SprawlSummaryOut
    assumptions: list[AssumptionOut]


class DetectorOut(BaseModel):
    detector: str
    category: Category
    parameter: str | None
    default: float | None
    meaning: str


def finding(f: Any) -> FindingOut:
    return FindingOut.model_validate(f, from_attributes=True)


def summary(s: sprawl.SprawlSummary) -> SprawlSummaryOut:
    head = {k: getattr(s, k) for k in SprawlSummaryOut.model_fields if k != "categories"}
    categories = [
        CategoryTotalOut(
            category=t.category,
            count=t.count,
            monthly=round(t.monthly, 2),
            yearly=round(12 * t.monthly, 2),
            counted_as_waste=t.is_waste,
        )
        for t in s.categories
    ]
    return SprawlSummaryOut(**head, categories=categories)


def _metrics(state: Any) -> MetricsStore:
    """The app's metrics store (as the metrics routes open it), from a job's thread."""
    store: MetricsStore | None = getattr(state, "metrics", None)
    if store is None:
        store = settings_metrics_store(state.settings)
        state.metrics = store
    return store


def _report(params: ReportRequest, state: Any, _progress: Progress) -> SprawlReportOut:
    data = sprawl.sprawl_report(
        state.inventory,
        _metrics(state),
        get_cost_model_of(state),
        days=params.days,
        backup_policy=load_policy(state.settings),
        run=sprawl.AnalysisRun.of(state.settings),
        governance=configured_policy(state.settings.governance_policy),
    )
    return SprawlReportOut(
        summary=summary(sprawl.SprawlSummary.of(data.analysis)),
        findings=[finding(f) for f in data.analysis.findings],
        scorecard=[SignOut.model_validate(s, from_attributes=True) for s in data.signs],
        waste_over_time=[
            MonthWasteOut(
                at=p.at,
                vms=p.vms,
                waste=round(p.waste, 2),
                at_risk=round(p.at_risk, 2),
                by_category={
                    c: CategoryMonthOut(count=p.counts[c], monthly=round(v, 2))
                    for c, v in p.monthly.items()
                },
            )
            for p in data.history
        ],
    )


class BitbrainsMonth(StrEnum):
    july = "2013-7"
    august = "2013-8"
    september = "2013-9"


class BitbrainsRequest(BaseModel):
    """A month of the Bitbrains Rnd traces the server holds ($CORRAL_SHARED_DATA/bitbrains-rnd)."""

    model_config = ConfigDict(extra="forbid")

    month: BitbrainsMonth = BitbrainsMonth.july
    limit: int | None = Field(default=None, ge=1, le=100_000, description="Only the first N VMs.")
    assumed_disk_gb: float = Field(default=50.0, ge=0, le=1_000_000)
    mode: RightSizeMode = RightSizeMode.moderate
    headroom: float = Field(default=0.2, ge=0, le=10, description="0.2 = 20 % above demand.")


class BitbrainsSummaryOut(BaseModel):
    vms: int
    idle_vms: int
    idle_undecided: int
    oversized_vms: int
    oversized_cpu: int
    oversized_memory: int
    undersized_vms: int
    rightsizing_undecided: int
    currency: str
    fleet_monthly_cost: float
    idle_monthly: float
    rightsizing_monthly: float
    waste_monthly: float
    waste_yearly: float


class BitbrainsOut(BaseModel):
    month: str
    window_start: datetime
    window_end: datetime
    assumed_disk_gb: float
    summary: BitbrainsSummaryOut
    findings: list[FindingOut]


def _bitbrains(params: BitbrainsRequest, state: Any, _progress: Progress) -> BitbrainsOut:
    if state.settings.shared_data is None:
        raise NotFoundError(
            "no trace folder is set; set CORRAL_SHARED_DATA (it holds bitbrains-rnd/)."
        )
    result = sprawl.bitbrains(
        state.settings.shared_data / "bitbrains-rnd",
        get_cost_model_of(state),
        month=params.month.value,
        limit=params.limit,
        assumed_disk_gb=params.assumed_disk_gb,
        rightsizing=RightSizingParams(mode=params.mode, headroom=params.headroom),
    )
    return BitbrainsOut(
        month=result.month,
        window_start=result.window_start,
        window_end=result.window_end,
        assumed_disk_gb=result.assumed_disk_gb,
        summary=BitbrainsSummaryOut.model_validate(result.summary, from_attributes=True),
        findings=[finding(f) for f in result.analysis.findings],
    )


REPORT = JobKind("sprawl.report", ReportRequest, _report)
BITBRAINS = JobKind("sprawl.bitbrains", BitbrainsRequest, _bitbrains)
JOB_KINDS = (REPORT, BITBRAINS)


@router.post("/findings", response_model=FindingsOut, responses=error_responses(401, 404, 413, 422))
def findings(
    body: FleetRequest,
    inv: InventoryDep,
    model: CostModelDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
) -> FindingsOut:
    """Findings that need no metrics: powered off, orphaned, snapshots, owner, purpose, lease."""
    result = sprawl.inventory_findings(records(body, inv), model)
    return FindingsOut(
        currency=result.currency,
        findings=[finding(f) for f in result.findings],
        insufficient=[
            InsufficientOut.model_validate(i, from_attributes=True) for i in result.insufficient
        ],
    )


@router.post(
    "/report",
    status_code=202,
    response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)
def report(
    body: ReportRequest,
    jobs: JobsDep,
    who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:
    """The live fleet's sprawl, priced, with its scorecard (a job; result: SprawlReportOut)."""
    return accept(jobs, REPORT, body, who.user, response)


@router.post(
    "/bitbrains",
    status_code=202,
    response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)
def bitbrains(
    body: BitbrainsRequest,
    jobs: JobsDep,
    who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:
    """Idle and oversized VMs in a month of Bitbrains traces (a job; result: BitbrainsOut)."""
    return accept(jobs, BITBRAINS, body, who.user, response)


@router.post("/scenario", response_model=ScenarioOut, responses=error_responses(413, 422))
def scenario(
    body: ScenarioRequest,
    model: CostModelDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
) -> ScenarioOut:
    """The seed scenario: sprawl waste of a generated fleet with stated, sourced rates."""
    result = sprawl.scenario(model, body.vms, body.seed)
    return ScenarioOut(
        seed=result.seed,
        summary=summary(result.summary),
        assumptions=[
            AssumptionOut.model_validate(a, from_attributes=True) for a in result.assumptions
        ],
    )


@router.get("/detectors", response_model=Page[DetectorOut], responses=error_responses(422))
def detectors(
    _who: Annotated[Principal, require(Perm.fleet_read)], limit: Limit = 100, cursor: Cursor = None
) -> Page[DetectorOut]:
    """Every detector with its parameters and their defaults."""
    rows = [
        DetectorOut.model_validate(d, from_attributes=True) for d in sprawl.detector_catalogue()
    ]
    return paginate(sorted(rows, key=_detector_key), _detector_key, limit, cursor)


def _detector_key(d: DetectorOut) -> tuple[str, str]:
    return (d.detector, d.parameter or "")
