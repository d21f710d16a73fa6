"""VM requests in the browser: the requester's page (their requests, a new one, withdraw,
quota left) and the approver's queue (approve or deny with a reason).

Every step is the request service's own (corral.services.requests), with the signed-in
principal: the page asks ``authorize`` for the permission, and the service checks the
department, the life cycle and "never one's own request" again, as for the REST API.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.deps import get_inventory
from corral.domain.access import Permission as P
from corral.domain.requests import QuotaDimension, Size
from corral.errors import NotFoundError, ValidationError
from corral.inventory.filters import VMFilter
from corral.services.quotas import QuotaService, QuotaView
from corral.services.requests import RequestService, RequestSpec
from corral.services.templates import TemplateService
from corral.services.web_sessions import Viewer
from corral.web.pages import PageRoute, acting, authorize, read_form, redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: How many of their own VMs the requester's page lists (the VM list shows them all).
MY_VMS = 20

#: What a new request's form starts with (a small VM for a month).
DEFAULTS = {
    "template": "",
    "count": "1",
    "vcpus": "2",
    "memory_mib": "4096",
    "disk_gb": "20",
    "environment": "dev",
    "lease_days": "30",
    "purpose": "",
    "department": "",
    "blueprint": "",  # a blueprint's name: its tiers are the VMs (the size fields unused)
}


def _requests(request: Request) -> RequestService:
    svc: RequestService = request.app.state.requests
    return svc


def _quotas(request: Request) -> QuotaService:
    svc: QuotaService = request.app.state.quotas
    return svc


@dataclass(frozen=True, slots=True)
class QuotaLine:
    """One dimension of a department's quota as the page shows it (None: no limit)."""

    dimension: str
    used: float
    limit: float | None
    left: float | None


def quota_lines(view: QuotaView) -> list[QuotaLine]:
    lines = []
    for dim in QuotaDimension:
        used, limit = view.used.get(dim), view.limits.get(dim)
        left = None if limit is None else max(0.0, limit - used)
        lines.append(QuotaLine(dim.value, used, limit, left))
    return lines


@router.get("/requests")
def my_requests(request: Request) -> Response:
    viewer = authorize(request, P.request_create)
    form = dict(DEFAULTS, blueprint=request.query_params.get("blueprint", "").strip()[:64])
    return _my_page(request, viewer, form, problem=None)


def _my_page(
    request: Request, viewer: Viewer, form: dict[str, str], problem: str | None, status: int = 200
) -> Response:
    who = viewer.principal
    departments = sorted(who.departments)
    if not form.get("department") and departments:
        form["department"] = departments[0]
    quotas = [_quotas(request).get(d, who) for d in departments]
    owned = VMFilter(owner=viewer.name, departments=who.visible_departments(P.vm_read))
    vms = get_inventory(request).list_vms(owned, sort="name", limit=MY_VMS)
    boot_dir = request.app.state.settings.boot_dir
    return render(
        request,
        "requests.html",
        status=status,
        title="My requests",
        requests=_requests(request).listing(who, mine=True),
        quotas=[(q, quota_lines(q)) for q in quotas],
        vms=vms,
        departments=departments,
        environments=_requests(request).rules.environments,
        templates=[t.name for t in TemplateService(get_inventory(request).db, boot_dir).all()],
        form=form,
        problem=problem,
    )


@router.post("/requests")
async def new_request(request: Request) -> Response:
    """Create and send a request; a refusal shows the form again, filled, with the reason."""
    viewer = authorize(request, P.request_create)
    form = await read_form(request)
    kept = {k: form.get(k, v).strip() for k, v in DEFAULTS.items()}
    try:
        spec = _spec(kept, viewer)
        with acting(request, viewer):
            made = _requests(request).create(spec, viewer.principal, submit=True)
    except ValidationError as exc:
        return _my_page(request, viewer, kept, exc.message, status=exc.http_status)
    return redirect(f"/requests#request-{made.id}")


def _spec(form: dict[str, str], viewer: Viewer) -> RequestSpec:
    if form["blueprint"]:  # the service resolves the tiers; template and size are unused
        return RequestSpec(
            template="",
            count=1,
            size=Size(1, 1, 0.0),
            owner=viewer.name,
            department=form["department"],
            purpose=form["purpose"],
            environment=form["environment"],
            lease_days=_whole(form["lease_days"], "the lease (days)"),
            blueprint=form["blueprint"],
        )
    return RequestSpec(
        template=form["template"],
        count=_whole(form["count"], "the number of VMs"),
        size=Size(
            _whole(form["vcpus"], "the vCPUs"),
            _whole(form["memory_mib"], "the memory (MiB)"),
            _decimal(form["disk_gb"], "the disk (GB)"),
        ),
        owner=viewer.name,
        department=form["department"],
        purpose=form["purpose"],
        environment=form["environment"],
        lease_days=_whole(form["lease_days"], "the lease (days)"),
    )


def _whole(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise ValidationError(f"{what} must be a whole number.")
    return int(text)


def _decimal(text: str, what: str) -> float:
    whole, _, part = text.partition(".")
    if not (whole + part).isdigit() or len(text) > 12:
        raise ValidationError(f"{what} must be a number, e.g. 20 or 20.5.")
    return float(text)


@router.post("/requests/{request_id}/withdraw")
async def withdraw(request: Request, request_id: str) -> Response:
    viewer = authorize(request, P.request_create)
    form = await read_form(request)
    with acting(request, viewer):
        _requests(request).cancel(_id(request_id), viewer.principal, form.get("note", "").strip())
    return redirect(f"/requests#request-{_id(request_id)}")


@router.get("/approvals")
def approvals(request: Request) -> Response:
    viewer = authorize(request, P.request_decide)
    return render(
        request,
        "approvals.html",
        title="Requests waiting for you",
        waiting=_requests(request).waiting_for(viewer.principal),
    )


@router.post("/requests/{request_id}/approve")
async def approve(request: Request, request_id: str) -> Response:
    viewer = authorize(request, P.request_decide)
    form = await read_form(request)
    with acting(request, viewer):
        _requests(request).approve(_id(request_id), viewer.principal, form.get("note", "").strip())
    return redirect("/approvals")


@router.post("/requests/{request_id}/deny")
async def deny(request: Request, request_id: str) -> Response:
    viewer = authorize(request, P.request_decide)
    form = await read_form(request)
    with acting(request, viewer):
        _requests(request).deny(_id(request_id), viewer.principal, form.get("note", ""))
    return redirect("/approvals")


def _id(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise NotFoundError("no such request; request numbers are whole numbers.")
    return int(text)
