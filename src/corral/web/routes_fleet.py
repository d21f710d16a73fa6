"""The fleet's pages: the administrator's landing page, hosts, the VM list, a VM, events."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.deps import get_inventory, get_reclaim
from corral.api.routes.metrics import get_metrics_store
from corral.domain.access import Permission as P
from corral.domain.access import Target
from corral.domain.model import VMState
from corral.errors import ForbiddenError, NotFoundError, ValidationError
from corral.inventory.filters import SORT_KEYS, VMFilter
from corral.inventory.listing import VMCount
from corral.inventory.service import Inventory, Page
from corral.metrics.catalog import METRICS
from corral.metrics.model import EntityKind, Stat
from corral.services import alerts_cli, capacity_runway, diagnosis, ha_outlook
from corral.services.web_sessions import may
from corral.web import chart, routes_backup
from corral.web.pages import (
    PageRoute,
    acting,
    authorize,
    live_fleet,
    query,
    read_form,
    redirect,
    render,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 50
HOST_PAGE = 100
#: The VM list's query parameters (all in the URL, so a filtered list is a link to share).
VM_QUERY = {
    "q": "",
    "state": "",
    "host": "",
    "owner": "",
    "department": "",
    "environment": "",
    "no_owner": "",
    "expired": "",
    "sort": "name",
    "order": "asc",
    "cursor": "",
    "n": "",  # the count the first page showed, carried to the later ones ("~": an estimate)
    "exact": "",  # "1": count exactly where PostgreSQL would estimate
}
#: Query parameters that are about the page shown, not the filter (links drop them).
_PAGE_ONLY = ("cursor", "n", "exact")
VM_METRICS = tuple(m.name for m in METRICS if m.kind is EntityKind.vm)


@router.get("/admin")
def admin(request: Request) -> Response:
    viewer = authorize(request, P.fleet_analyse, fleet=True)
    inv = get_inventory(request)
    tally = inv.vm_tally()
    counts = [
        ("all", "/vms", tally.total),
        *((s.value, f"/vms?state={s.value}", tally.by_state.get(s.value, 0)) for s in _STATES),
        ("no owner", "/vms?no_owner=1", tally.no_owner),
        ("lease expired", "/vms?expired=1", tally.lease_expired),
    ]
    hosts = inv.hosts_page(after=None, limit=HOST_PAGE, count=True)
    open_cases = get_reclaim(request).cases(open_only=True)
    alerts = alerts_cli.service(request.app.state.settings, inv.db)
    fleet = live_fleet(request)
    return render(
        request,
        "admin.html",
        firing=len(alerts.alerts(alerts_cli.AlertState.firing)),
        title=f"Fleet — {viewer.name}",
        counts=counts,
        hosts=hosts.items,
        hosts_total=hosts.total,
        more_hosts=(
            "/hosts?" + urlencode({"after": hosts.next_key[0]}) if hosts.next_key else None
        ),
        events=inv.events(limit=10),
        open_cases=len(open_cases),
        ha=ha_outlook.outlook(inv.db, fleet),
        runway=capacity_runway.fleet_runway(
            inv.db, get_metrics_store(request), fleet, int(time.time())
        ),
    )


_STATES = (VMState.running, VMState.shutoff, VMState.paused, VMState.crashed)


@router.get("/hosts")
def hosts(request: Request) -> Response:
    """The hosts by name, a page at a time (a fleet may have 10,000)."""
    authorize(request, P.fleet_read)
    after = query(request, {"after": ""})["after"]
    page = get_inventory(request).hosts_page(after=(after,) if after else None, limit=HOST_PAGE)
    return render(
        request,
        "hosts.html",
        title="Hosts",
        hosts=page.items,
        next_url="/hosts?" + urlencode({"after": page.next_key[0]}) if page.next_key else None,
        first_url="/hosts" if after else None,
    )


@router.get("/vms")
def vms(request: Request) -> Response:
    viewer = authorize(request, P.vm_read)
    inv = get_inventory(request)
    q = query(request, VM_QUERY)
    if q["sort"] not in SORT_KEYS:
        raise ValidationError(f"cannot sort by {q['sort'][:40]!r}; use a column heading.")
    f = VMFilter(
        search=q["q"] or None,
        state=q["state"] or None,
        host=q["host"] or None,
        owner=q["owner"] or None,
        department=q["department"] or None,
        environment=q["environment"] or None,
        no_owner=q["no_owner"] == "1",
        expired=q["expired"] == "1",
        departments=viewer.principal.visible_departments(P.vm_read),
    )
    page = inv.list_vms(
        f,
        sort=q["sort"],
        descending=q["order"] == "desc",
        limit=PAGE_SIZE,
        cursor=q["cursor"] or None,
        count=False,
    )
    counted = _vm_count(inv, f, q, page)
    kept = {k: v for k, v in q.items() if v and k not in _PAGE_ONLY}
    carried = {"n": f"{'' if counted.exact else '~'}{counted.count}"} if counted else {}
    return render(
        request,
        "vms.html",
        title="Virtual machines",
        q=q,
        page=page,
        counted=counted,
        states=[s.value for s in VMState],
        host_names=inv.host_names(),
        next_url="/vms?" + urlencode({**kept, **carried, "cursor": page.next_cursor})
        if page.next_cursor
        else None,
        first_url="/vms?" + urlencode(kept) if q["cursor"] else None,
        exact_url="/vms?" + urlencode({**kept, "exact": "1"}),
        sort_url=lambda key: _sort_url(kept, key),
    )


def _vm_count(inv: Inventory, f: VMFilter, q: dict[str, str], page: Page) -> VMCount | None:
    """How many VMs the list holds, read once: on the first page PostgreSQL's estimate (an
    exact count when asked, and always on SQLite, which has none), a page that holds the
    whole list by its length; a later page shows what the first one read (its link carries
    it), so paging through 100,000 VMs never counts them again."""
    if not q["cursor"]:
        if page.next_cursor is None:
            return VMCount(len(page.items), exact=True)
        counted = inv.count_vms(f, estimate=q["exact"] != "1")
        # More than this page: at least one more VM than it shows, whatever the estimate.
        return VMCount(max(counted.count, len(page.items) + 1), counted.exact)
    carried = q["n"]
    number = carried.removeprefix("~")
    if not number.isdigit() or len(number) > 12:
        return None  # not carried (or edited): said so rather than guessed
    return VMCount(int(number), exact=not carried.startswith("~"))


def _sort_url(kept: dict[str, str], key: str) -> str:
    same = kept.get("sort", "name") == key and kept.get("order", "asc") == "asc"
    return "/vms?" + urlencode({**kept, "sort": key, "order": "desc" if same else "asc"})


@router.get("/vms/{ref}")
def vm(request: Request, ref: str) -> Response:
    viewer = authorize(request, P.vm_read)
    detail = get_inventory(request).find_vm(ref)
    if not may(viewer, P.vm_read, Target(detail.department)):
        raise NotFoundError("no such VM among those you may see.")
    q = query(request, {"metric": "cpu_pct", "from": "", "to": "", "diagnose": ""})
    if q["metric"] not in VM_METRICS:
        raise ValidationError(f"unknown metric; choose one of {', '.join(VM_METRICS)}.")
    now = int(time.time())
    start, end = chart.clamp_range(_int(q["from"], now - 7 * 86400), _int(q["to"], now), now)
    step = chart.step_for(start, end)
    store = get_metrics_store(request)
    points = store.series(EntityKind.vm, detail.uuid, q["metric"], start, end, step, Stat.avg)
    line = chart.line_chart(start, end, step, [(p.ts, p.value) for p in points])
    asked = _int(q["diagnose"], now) if q["diagnose"] else None
    return render(
        request,
        "vm.html",
        title=f"VM {detail.name}",
        vm=detail,
        cases=get_reclaim(request).history(detail.uuid),
        points=routes_backup.points(request, detail.uuid) if may(viewer, P.ops_read) else None,
        metric=q["metric"],
        metrics=VM_METRICS,
        chart=line,
        presets=[(label, now - span, now) for label, span in chart.PRESETS],
        range_url=lambda lo, hi: _range_url(detail.uuid, q["metric"], lo, hi),
        can_edit=may(viewer, P.vm_annotate, Target(detail.department)),
        diagnosis=None if asked is None else _diagnosis(request, detail.uuid, asked),
        diagnose_url=f"/vms/{detail.uuid}?"
        + urlencode({"metric": q["metric"], "from": start, "to": end, "diagnose": end})
        + "#diagnosis",
    )


@dataclass(frozen=True)
class DiagnosisView:
    """What the VM page shows of a diagnosis: the headline, each finding, or why there is none."""

    at: datetime
    headline: str
    findings: tuple[tuple[str, str], ...]  # (cause, evidence), most severe first
    missing: str | None = None


def _diagnosis(request: Request, uuid: str, at: int) -> DiagnosisView:
    """The diagnosis service's verdict at ``at`` (asked for by a link: it reads a dozen series,
    so the page does not pay for it on every view)."""
    when = datetime.fromtimestamp(at, UTC)
    try:
        history_s = request.app.state.settings.diagnosis_history_s
        found = diagnosis.diagnose(get_metrics_store(request), uuid, at, history_s)
    except NotFoundError as exc:
        return DiagnosisView(when, "", (), exc.message)
    names = get_inventory(request).vm_names(
        {uuid, *(c for f in found.findings for c in f.culprits)}
    )
    rows = tuple((f.cause.value.replace("_", " "), f.evidence) for f in found.findings)
    return DiagnosisView(when, diagnosis.headline(found, names), rows)


#: The metadata a person may edit on the VM page (the REST PATCH's fields).
EDITABLE = (
    "owner",
    "department",
    "purpose",
    "project",
    "environment",
    "expires_on",
    "protection_tier",
    "tags",
)


@router.post("/vms/{ref}/metadata")
async def edit_metadata(request: Request, ref: str) -> Response:
    """Change a VM's metadata as ``corral vm set`` and the REST PATCH do: an empty field
    clears it, tags are comma-separated. Annotating needs ``vm.annotate`` on the VM's
    department and, when the department changes, on the new one too."""
    viewer = authorize(request, P.vm_read)
    form = await read_form(request)
    inv = get_inventory(request)
    detail = inv.find_vm(ref)
    if not may(viewer, P.vm_read, Target(detail.department)):
        raise NotFoundError("no such VM among those you may see.")
    changes: dict[str, str] = {k: form[k].strip() for k in EDITABLE if k in form}
    departments = {detail.department, changes.get("department", detail.department) or None}
    if not all(may(viewer, P.vm_annotate, Target(d)) for d in departments):
        raise ForbiddenError(f"user {viewer.name!r} may not change this VM's metadata.")
    with acting(request, viewer):
        inv.set_metadata(detail.uuid, dict(changes), actor=f"web:{viewer.name}")
    return redirect(f"/vms/{detail.uuid}#meta")


def _range_url(uuid: str, metric: str, lo: int, hi: int) -> str:
    return f"/vms/{uuid}?" + urlencode({"metric": metric, "from": lo, "to": hi})


def _int(text: str, default: int) -> int:
    if not text:
        return default
    if not text.lstrip("-").isdigit() or len(text) > 12:
        raise ValidationError("a time range is two Unix times in seconds ('from' and 'to').")
    return int(text)


@router.get("/events")
def events(request: Request) -> Response:
    authorize(request, P.vm_read, fleet=True)
    q = query(request, {"kind": "", "before": "", "vm": ""})
    before = _before(q["before"]) if q["before"] else None
    rows = get_inventory(request).events(
        kind=q["kind"] or None, vm=q["vm"] or None, before=before, limit=PAGE_SIZE
    )
    kept = {k: v for k, v in q.items() if v and k != "before"}
    older = None
    if len(rows) == PAGE_SIZE:
        last = rows[-1]
        older = "/events?" + urlencode({**kept, "before": f"{last.at.isoformat()}~{last.id}"})
    return render(request, "events.html", title="Events", q=q, events=rows, older_url=older)


def _before(text: str) -> tuple[datetime, int]:
    at, _, event_id = text.rpartition("~")
    try:
        return datetime.fromisoformat(at), int(event_id)
    except ValueError:
        raise ValidationError("that page link is damaged; start from the newest events.") from None


def event_summary(details: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in details.items())
