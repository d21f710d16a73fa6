"""A stored series' learned baseline and forecast, and a VM's diagnosis, over HTTP (the CLI's
``corral metrics baseline|forecast|diagnose``): the same services, the same answers.

Both read one VM's or host's metric history, as ``/api/v1/metrics/series`` does, so they need
``fleet.read`` like it.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from corral.api.deps import InventoryDep, require
from corral.api.problems import error_responses
from corral.api.routes.metrics import StoreDep
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.metrics.model import EntityKind
from corral.metrics.timeparse import parse_duration
from corral.services import diagnosis
from corral.services import series_insights as insights
from corral.services.diagnosis import Cause, headline

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

EntityId = Annotated[str, Query(description="VM UUID or host name", min_length=1, max_length=256)]
Duration = Annotated[str, Query(pattern=r"^\d+[smhdw]$", description="e.g. 1h, 7d")]


class HourBandOut(BaseModel):
    hour_of_week: int = Field(description="0 = Monday 00:00 UTC")
    day: str
    hour: int
    median: float
    low: float
    high: float


class BaselineOut(BaseModel):
    kind: EntityKind
    id: str
    metric: str
    state: str = Field(description="learning (no band yet) or ready")
    history_days: float
    hours_seen: int
    needs_days: float = Field(description="days of history before the band is ready")
    needs_hours: int = Field(description="hours of the week that must have samples")
    at: int
    latest: float | None
    band_now: HourBandOut | None
    outside: bool | None
    hours: list[HourBandOut]


class ForecastStepOut(BaseModel):
    timestamp: str
    forecast: float
    lower: float = Field(description="80 % interval")
    upper: float


class ForecastOut(BaseModel):
    kind: EntityKind
    id: str
    metric: str
    history_from: int
    start: int
    step: int
    horizon: int
    steps: list[ForecastStepOut]


def _band(b: insights.HourBand | None) -> HourBandOut | None:
    return None if b is None else HourBandOut(**b.__dict__)


@router.get("/baseline", response_model=BaselineOut, responses=error_responses(422, 502))
def baseline(
    store: StoreDep,
    _who: Annotated[Principal, require(Perm.fleet_read)],
    id: EntityId,
    metric: str,
    kind: EntityKind = EntityKind.vm,
    history: Duration = "28d",
) -> BaselineOut:
    """The learned hour-of-week band of a stored series and where its newest value stands."""
    v = insights.baseline(store, kind, id, metric, int(time.time()), parse_duration(history))
    return BaselineOut(
        kind=v.kind,
        id=v.entity,
        metric=v.metric,
        state=v.state.value,
        history_days=v.history_days,
        hours_seen=v.hours_seen,
        needs_days=v.needs_days,
        needs_hours=v.needs_hours,
        at=v.at,
        latest=v.latest,
        band_now=_band(v.band_now),
        outside=v.outside,
        hours=[HourBandOut(**h.__dict__) for h in v.hours],
    )


@router.get("/forecast", response_model=ForecastOut, responses=error_responses(422, 502))
def forecast(
    store: StoreDep,
    _who: Annotated[Principal, require(Perm.fleet_read)],
    id: EntityId,
    metric: str,
    kind: EntityKind = EntityKind.vm,
    horizon: Duration = "168h",
    step: Duration = "1h",
    history: Duration = "30d",
) -> ForecastOut:
    """Each step's mean after the newest sample over ``horizon``, with an 80 % interval."""
    v = insights.forecast(
        store,
        kind,
        id,
        metric,
        int(time.time()),
        parse_duration(horizon),
        parse_duration(step),
        parse_duration(history),
    )
    return ForecastOut(
        kind=v.kind,
        id=v.entity,
        metric=v.metric,
        history_from=v.history_from,
        start=v.start,
        step=v.step_s,
        horizon=v.horizon_s,
        steps=[ForecastStepOut(**s.__dict__) for s in v.steps],
    )


class FindingOut(BaseModel):
    cause: Cause
    evidence: str
    severity: float = Field(description="the measure over its threshold (1 = at the threshold)")
    since: int | None = Field(description="start of the condition in the window, epoch seconds")
    culprits: list[str] = Field(description="VM UUIDs: the neighbours causing it, or the VM")
    exhaustion_at: int | None = Field(description="a leak's projected full memory, epoch s")


HistoryDefault = Annotated[
    str | None,
    Query(pattern=r"^\d+[smhdw]$", description="e.g. 3d; default: diagnosis_history_s (7d)"),
]


def _diagnosis_history(request: Request, history: str | None) -> int:
    """The history a diagnosis reads: the query's, else the server's setting."""
    if history is None:
        return int(request.app.state.settings.diagnosis_history_s)
    return parse_duration(history)


class DiagnosisOut(BaseModel):
    id: str
    host: str
    at: int
    window: int
    headline: str
    findings: list[FindingOut] = Field(description="most severe first; empty when healthy")


def _whole(t: float | None) -> int | None:
    return None if t is None else int(t)


@router.get("/diagnose", response_model=DiagnosisOut, responses=error_responses(404, 422, 502))
def diagnose(
    store: StoreDep,
    _who: Annotated[Principal, require(Perm.fleet_read)],
    request: Request,
    id: EntityId,
    history: HistoryDefault = None,
) -> DiagnosisOut:
    """Why a VM is slow or busy now, from its, its host's and its neighbours' stored series."""
    d = diagnosis.diagnose(store, id, int(time.time()), _diagnosis_history(request, history))
    return DiagnosisOut(
        id=d.vm,
        host=d.host,
        at=int(d.at),
        window=int(d.window),
        headline=headline(d),
        findings=[
            FindingOut(
                cause=f.cause,
                evidence=f.evidence,
                severity=round(f.severity, 4),
                since=_whole(f.since),
                culprits=list(f.culprits),
                exhaustion_at=_whole(f.exhaustion_at),
            )
            for f in d.findings
        ],
    )


class FleetGroupOut(BaseModel):
    host: str
    cause: Cause
    since: int | None = Field(description="the earliest onset among the group, epoch seconds")
    vms: list[str] = Field(description="VM UUIDs, most severe first")
    culprits: list[str] = Field(description="VM UUIDs of the neighbours causing it")
    impact: float = Field(description="the sum of the members' severities; groups sort by it")
    exhaustion_at: int | None = Field(description="a leak group's earliest projected full memory")
    sentence: str


class FleetDiagnosisOut(BaseModel):
    at: int
    window: int
    diagnosed: int
    healthy: int = Field(description="VMs with no finding (in no group)")
    groups: list[FleetGroupOut] = Field(description="host x cause x onset, most impact first")


@router.get(
    "/diagnose/fleet", response_model=FleetDiagnosisOut, responses=error_responses(422, 502)
)
def diagnose_fleet(
    request: Request,
    store: StoreDep,
    inventory: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_read)],
    history: HistoryDefault = None,
) -> FleetDiagnosisOut:
    """Every VM diagnosed from the stored series, grouped by host, cause and onset."""
    s = diagnosis.fleet_summary(
        store,
        int(time.time()),
        _diagnosis_history(request, history),
        request.app.state.settings.analysis_chunk_size,
    )
    s = diagnosis.labelled(s, inventory)
    return FleetDiagnosisOut(
        at=int(s.at),
        window=int(s.window),
        diagnosed=s.diagnosed,
        healthy=s.healthy,
        groups=[
            FleetGroupOut(
                host=g.host,
                cause=g.cause,
                since=_whole(g.since),
                vms=list(g.vms),
                culprits=list(g.culprits),
                impact=round(g.impact, 4),
                exhaustion_at=_whole(g.exhaustion_at),
                sentence=g.sentence,
            )
            for g in s.groups
        ],
    )
