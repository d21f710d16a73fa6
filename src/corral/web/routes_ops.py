"""What keeps the fleet safe, in the browser: HA protection, backups against their RPO, alerts.

Reading follows the REST API's permissions (HA and alerts name every department's VMs:
``fleet.analyse``; the restore-point catalog: ``ops.read``); acknowledging and silencing an
alert change what is notified and need ``fleet.operate``, checked here on the server.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.deps import get_inventory
from corral.domain.access import Permission as P
from corral.errors import NotFoundError, ValidationError
from corral.services import alerts_cli, backup, backup_status, ha_live_views
from corral.services.alerts import AlertService
from corral.services.backup_restore_test import history as restore_tests
from corral.web import routes_backup
from corral.web.pages import PageRoute, acting, authorize, query, read_form, redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: The silence lengths the alerts page offers (the REST API takes any).
SILENCE_FOR = ("1h", "4h", "1d", "7d")
#: The restore tests listed on the backup page, newest first.
TESTS_SHOWN = 20


@router.get("/ha")
def ha(request: Request) -> Response:
    authorize(request, P.fleet_analyse, fleet=True)
    inv = get_inventory(request)
    plan = ha_live_views.plan(inv.db, inv)
    by_host: dict[str, list[ha_live_views.PlanEntry]] = {}
    for entry in plan.entries:
        by_host.setdefault(entry.failed_host, []).append(entry)
    return render(
        request,
        "ha.html",
        title="High availability",
        ha=ha_live_views.status(inv.db),
        plan=plan,
        by_host=by_host,
    )


@router.get("/backups")
def backups(request: Request) -> Response:
    authorize(request, P.ops_read, fleet=True)
    policy = backup.load_policy(request.app.state.settings)
    rows = backup_status.rpo_status(get_inventory(request).db, policy, datetime.now(UTC))
    counts = {v.value: sum(1 for r in rows if r.verdict is v) for v in backup_status.RPOVerdict}
    found = routes_backup.points(request)
    return render(
        request,
        "backups.html",
        title="Backups",
        rows=rows,
        counts=counts,
        source=policy.source,
        points=found[: routes_backup.POINTS_SHOWN],
        points_total=len(found),
        tests=restore_tests(get_inventory(request).db, limit=TESTS_SHOWN),
    )


def _alerts(request: Request) -> AlertService:
    return alerts_cli.service(request.app.state.settings, get_inventory(request).db)


@router.get("/alerts")
def alerts(request: Request) -> Response:
    authorize(request, P.fleet_analyse, fleet=True)
    q = query(request, {"state": ""})
    states = [s.value for s in alerts_cli.AlertState]
    if q["state"] and q["state"] not in states:
        raise ValidationError(f"unknown state; choose one of {', '.join(states)}.")
    svc = _alerts(request)
    shown = svc.alerts(alerts_cli.AlertState(q["state"]) if q["state"] else None)
    return render(
        request,
        "alerts.html",
        title="Alerts",
        q=q,
        states=states,
        alerts=shown,
        silences=svc.silences(),
        silence_for=SILENCE_FOR,
        now=svc.clock(),
    )


@router.post("/alerts/{fingerprint}/ack")
async def ack(request: Request, fingerprint: str) -> Response:
    viewer = authorize(request, P.fleet_operate, fleet=True)
    await read_form(request)
    with acting(request, viewer):
        _alerts(request).acknowledge(_fingerprint(fingerprint), viewer.name)
    return redirect("/alerts")


@router.post("/alerts/{fingerprint}/silence")
async def silence(request: Request, fingerprint: str) -> Response:
    """Silence the alert's own labels (read again here, never taken from the page)."""
    viewer = authorize(request, P.fleet_operate, fleet=True)
    form = await read_form(request)
    duration = form.get("duration", "")
    if duration not in SILENCE_FOR:
        raise ValidationError(f"silence for one of {', '.join(SILENCE_FOR)}.")
    svc = _alerts(request)
    fp = _fingerprint(fingerprint)
    alert = next((a for a in svc.alerts() if a.fingerprint == fp), None)
    if alert is None:
        raise NotFoundError("no such alert; reload the alerts page.")
    ends_at = svc.clock() + alerts_cli.seconds(duration)
    with acting(request, viewer):
        svc.silence(dict(alert.labels), ends_at, form.get("comment", "").strip(), viewer.name)
    return redirect("/alerts")


def _fingerprint(text: str) -> str:
    if len(text) != 16 or any(c not in "0123456789abcdef" for c in text):
        raise NotFoundError("no such alert; alert ids are 16 hexadecimal digits.")
    return text
