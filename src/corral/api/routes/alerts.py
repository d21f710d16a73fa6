"""Alerts over HTTP: read the alerts, rules and silences; acknowledge, silence, evaluate.

Reading alerts and silences needs ``fleet.analyse`` (they name every department's VMs), the
rules ``fleet.read``; acknowledging, silencing and evaluating change what is
notified and need ``fleet.operate``. Each write is recorded in the audit log as its caller.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from corral.api.deps import InventoryDep, require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.routes.metrics import StoreDep
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.services import alerts_cli as svc
from corral.services.alerts import AlertService

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

Fingerprint = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="The alert's id.")]
Label = Annotated[str, Field(min_length=1, max_length=128)]


def get_alerts(request: Request, inv: InventoryDep) -> AlertService:
    return svc.service(request.app.state.settings, inv.db)


AlertsDep = Annotated[AlertService, Depends(get_alerts)]


class AlertOut(BaseModel):
    id: str
    rule: str
    state: svc.AlertState
    severity: str
    group: str
    labels: dict[str, str]
    value: float
    summary: str
    started_at: float = Field(description="Epoch seconds the condition began.")
    changed_at: float
    acked_by: str | None
    muted_by: str | None = Field(description="The silence or inhibition muting it, if any.")


class SilenceIn(BaseModel):
    matchers: dict[Label, Label] = Field(min_length=1, max_length=20)
    duration: str = Field(default="2h", pattern=r"^\d+(\.\d+)?[smhd]$", description="e.g. 2h")
    comment: str = Field(default="", max_length=500)


class SilenceOut(BaseModel):
    id: str
    matchers: dict[str, str]
    ends_at: float
    comment: str
    created_by: str
    expiry_noticed: bool


class RuleOut(BaseModel):
    name: str
    kind: str
    for_s: float
    severity: str
    params: dict[str, Any]


class RulesOut(BaseModel):
    source: str
    rules: list[RuleOut]
    channels: list[str]


class EvaluateIn(BaseModel):
    inhibit: list[Annotated[str, Field(max_length=300)]] = Field(
        default=[], max_length=100, description="LABEL=VALUE[,...]:REASON, e.g. host=kvm-03:drill"
    )
    deliver: bool = True


class EvaluateOut(BaseModel):
    conditions: int
    changed: int
    notifications: int
    queued: int
    sent: int
    failed: int


def _out(a: svc.Alert) -> AlertOut:
    return AlertOut(
        id=a.fingerprint,
        rule=a.rule,
        state=a.state,
        severity=a.severity.value,
        group=a.group,
        labels=dict(a.labels),
        value=a.value,
        summary=a.summary,
        started_at=a.started_at,
        changed_at=a.changed_at,
        acked_by=a.acked_by,
        muted_by=a.muted_by,
    )


def _silence(s: svc.Silence) -> SilenceOut:
    return SilenceOut(
        id=s.id,
        matchers=dict(s.matchers),
        ends_at=s.ends_at,
        comment=s.comment,
        created_by=s.created_by,
        expiry_noticed=s.expiry_noticed,
    )


@router.get("", response_model=Page[AlertOut], responses=error_responses(422))
def list_alerts(
    alerts: AlertsDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
    state: Annotated[svc.AlertState | None, Query(description="Only this state.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[AlertOut]:
    """Alerts, newest change first."""
    items = [_out(a) for a in alerts.alerts(state)]
    return paginate(items, lambda a: (-round(a.changed_at * 1000), a.id), limit, cursor)


@router.get("/rules", response_model=RulesOut)
def rules(request: Request, _who: Annotated[Principal, require(Perm.fleet_read)]) -> RulesOut:
    """The rules in force and the channels' names (never their secrets)."""
    view = svc.rules_view(request.app.state.settings)
    return RulesOut(
        source=view.title, rules=[RuleOut(**r) for r in view.rules], channels=view.channels
    )


@router.get("/silences", response_model=Page[SilenceOut], responses=error_responses(422))
def silences(
    alerts: AlertsDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[SilenceOut]:
    """Silences, the soonest to end first."""
    items = [_silence(s) for s in alerts.silences()]
    return paginate(items, lambda s: (round(s.ends_at * 1000), s.id), limit, cursor)


@router.post(
    "/silences", response_model=SilenceOut, status_code=201, responses=error_responses(413, 422)
)
def silence(
    body: SilenceIn, alerts: AlertsDep, who: Annotated[Principal, require(Perm.fleet_operate)]
) -> SilenceOut:
    """Mute matching alerts until the silence ends; its end is notified."""
    ends_at = alerts.clock() + svc.seconds(body.duration)
    return _silence(alerts.silence(body.matchers, ends_at, body.comment, who.user))


@router.post("/evaluate", response_model=EvaluateOut, responses=error_responses(413, 422))
def evaluate(
    request: Request,
    body: EvaluateIn,
    alerts: AlertsDep,
    store: StoreDep,
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_operate)],
) -> EvaluateOut:
    """Evaluate every rule once on the metrics store, then send what is due."""
    facts = svc.facts(request.app.state.settings, inv)
    report = alerts.evaluate_store(store, None, svc.inhibitions(body.inhibit), facts)
    sent = alerts.deliver() if body.deliver else []
    ok = sum(1 for d in sent if d.sent)
    return EvaluateOut(
        conditions=report.conditions,
        changed=report.changed,
        notifications=report.notifications,
        queued=report.queued,
        sent=ok,
        failed=len(sent) - ok,
    )


@router.post("/{fingerprint}/ack", response_model=AlertOut, responses=error_responses(404, 409))
def ack(
    fingerprint: Fingerprint,
    alerts: AlertsDep,
    who: Annotated[Principal, require(Perm.fleet_operate)],
) -> AlertOut:
    """Acknowledge a firing alert until it resolves."""
    return _out(alerts.acknowledge(fingerprint, who.user))
