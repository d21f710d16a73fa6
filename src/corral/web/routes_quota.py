"""Department quotas in the browser: each department's usage against its quota in every
dimension, as bars, and (administrators) the form that changes a quota.

Usage and limits are the quota service's (corral.services.quotas): what the department runs
plus what its approved, not yet provisioned requests hold. Reading needs ``request.read``
and reaches the viewer's departments (all of them for fleet roles), as ``GET
/api/v1/quotas``; setting needs ``quota.manage`` on that department, checked here and again
by the service, whose write is audited as the viewer's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.domain.access import Permission as P
from corral.domain.requests import QuotaDimension
from corral.errors import ValidationError
from corral.services.quotas import Limits, QuotaService
from corral.web.pages import PageRoute, acting, authorize, read_form, redirect, render
from corral.web.routes_requests import quota_lines

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: What each dimension is called on the page, with its unit.
LABELS = {
    QuotaDimension.vcpus: ("vCPUs", ""),
    QuotaDimension.memory_mib: ("Memory", "MiB"),
    QuotaDimension.storage_gb: ("Storage", "GB"),
    QuotaDimension.vms: ("VMs", ""),
    QuotaDimension.monthly_cost: ("Monthly cost", ""),
}
MAX_LIMIT = 1e15


def _quotas(request: Request) -> QuotaService:
    svc: QuotaService = request.app.state.quotas
    return svc


@router.get("/quotas")
def quotas(request: Request) -> Response:
    viewer = authorize(request, P.request_read)
    views = _quotas(request).overview(viewer.principal)
    return render(
        request,
        "quotas.html",
        title="Department quotas",
        quotas=[(q, quota_lines(q), _anchor(q.department)) for q in views],
        labels={d.value: label for d, label in LABELS.items()},
        dimensions=[d.value for d in QuotaDimension],
    )


@router.post("/quotas")
async def set_quota(request: Request) -> Response:
    """Replace one department's limits (an empty field: no limit in that dimension)."""
    viewer = authorize(request, P.quota_manage)
    form = await read_form(request)
    department = form.get("department", "").strip()
    limits = Limits(*(_limit(form.get(d.value, ""), d) for d in QuotaDimension))
    with acting(request, viewer):  # the service refuses a department out of the viewer's reach
        _quotas(request).set(department, limits, viewer.principal)
    return redirect(f"/quotas#quota-{_anchor(department)}")


def _limit(text: str, dimension: QuotaDimension) -> float | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    whole, _, part = text.partition(".")
    if not (whole + part).isdigit() or len(text) > 18 or float(text) > MAX_LIMIT:
        raise ValidationError(
            f"the {LABELS[dimension][0].lower()} limit must be a number of 0 or more, "
            "or empty for no limit."
        )
    return float(text)


def _anchor(department: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in department)
