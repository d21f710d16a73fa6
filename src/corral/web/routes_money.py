"""What the fleet costs and wastes: the manager's landing page, sprawl, reclamation cases."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.deps import get_inventory, get_reclaim
from corral.api.routes.cost import get_cost_model
from corral.domain.access import Permission as P
from corral.domain.access import Target
from corral.errors import ConflictError, NotFoundError, ValidationError
from corral.reclaim.findings import FINDING_CATEGORIES, flag_findings
from corral.services import cost, sprawl
from corral.services.cost_api import Dimension
from corral.services.records import FleetRecords, live_records
from corral.services.sprawl_api import Category
from corral.services.web_sessions import may
from corral.web.pages import PageRoute, acting, authorize, query, read_form, redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _analysis(request: Request, fleet: FleetRecords | None = None) -> sprawl.SprawlAnalysis:
    """The live fleet's findings without metrics history (fast; idle VMs need the report job)."""
    fleet = fleet or live_records(get_inventory(request))
    return sprawl.fleet_analysis(fleet, None, get_cost_model(request))


@router.get("/manager")
def manager(request: Request) -> Response:
    authorize(request, P.fleet_analyse, fleet=True)
    model = get_cost_model(request)
    fleet = live_records(get_inventory(request))
    chargeback = cost.chargeback_by(fleet, model, Dimension.department)
    waste = sprawl.SprawlSummary.of(_analysis(request, fleet))
    return render(
        request,
        "manager.html",
        title="Cost and waste",
        chargeback=chargeback,
        waste=waste,
        dept_rows=[(r.key, r.lines.total) for r in chargeback.rows],
        waste_rows=[(c.category.value, c.monthly) for c in waste.categories],
        savings=get_reclaim(request).savings(),
        licences=cost.licence_compliance(fleet, model),
    )


@router.get("/sprawl")
def sprawl_page(request: Request) -> Response:
    authorize(request, P.fleet_analyse, fleet=True)
    q = query(request, {"category": ""})
    categories = [c.value for c in Category]
    if q["category"] and q["category"] not in categories:
        raise ValidationError(f"unknown category; choose one of {', '.join(categories)}.")
    analysis = _analysis(request)
    findings = sorted(
        (f for f in analysis.findings if not q["category"] or f.category == q["category"]),
        key=lambda f: -f.monthly_cost_held,
    )
    open_cases = {c.vm_uuid: c.id for c in get_reclaim(request).cases(open_only=True)}
    return render(
        request,
        "sprawl.html",
        title="Sprawl",
        q=q,
        categories=categories,
        summary=sprawl.SprawlSummary.of(analysis),
        findings=findings,
        open_cases=open_cases,
        vm_category=lambda f: f.category != Category.orphaned_disk,
        flaggable=lambda f: f.category in FINDING_CATEGORIES,
    )


@router.post("/sprawl/flag")
async def flag(request: Request) -> Response:
    """Open a case for a finding the server finds again now (the page's copy is not trusted),
    as ``corral reclaim flag-findings`` does: idle, powered-off and lease-expired VMs."""
    viewer = authorize(request, P.reclaim_flag, fleet=True)
    form = await read_form(request)
    subject, category = form.get("subject", ""), form.get("category", "")
    found = next(
        (f for f in _analysis(request).findings if (f.subject, f.category) == (subject, category)),
        None,
    )
    if found is None or found.category not in FINDING_CATEGORIES:
        raise NotFoundError("that finding is no longer there; reload the sprawl page.")
    with acting(request, viewer):
        (row,) = flag_findings(get_reclaim(request), [found], viewer.name)
    if row.result != "flagged":
        raise ConflictError(f"{found.subject_name} was not flagged: {row.detail}.")
    return redirect(f"/reclaim/{row.case}")


@router.get("/reclaim")
def cases(request: Request) -> Response:
    viewer = authorize(request, P.vm_read)
    q = query(request, {"open": ""})
    rows = [
        c
        for c in get_reclaim(request).cases(open_only=q["open"] == "1")
        if may(viewer, P.vm_read, Target(c.department))
    ]
    return render(request, "cases.html", title="Reclamation cases", q=q, cases=rows)


@router.get("/reclaim/{case_id}")
def case(request: Request, case_id: str) -> Response:
    viewer = authorize(request, P.vm_read)
    if not case_id.isdigit() or len(case_id) > 9:
        raise NotFoundError("no such case; case numbers are whole numbers.")
    detail = get_reclaim(request).case(int(case_id))
    if not may(viewer, P.vm_read, Target(detail.department)):
        raise NotFoundError("no such case among those you may see.")
    return render(request, "case.html", title=f"Case {detail.id}", case=detail)
