"""HA drills in the browser: the list of drill runs (paged) and each run's report.

Shown to whoever may see the /ha page (``fleet.analyse`` across the whole fleet: a drill
names every department's VMs), checked here on the server. The report is the one the drill
stored (services.ha_drill_report), the same as ``corral ha drill --report-html`` writes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.deps import get_inventory
from corral.domain.access import Permission as P
from corral.errors import NotFoundError
from corral.services import ha_drill_report
from corral.web.pages import PageRoute, authorize, query, render, when

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PER_PAGE = 25


@router.get("/ha/drills")
def drills(request: Request) -> Response:
    authorize(request, P.fleet_analyse, fleet=True)
    page = query(request, {"page": "1"})["page"]
    number = int(page) if page.isdigit() else 1
    found = ha_drill_report.drill_page(get_inventory(request).db, number, PER_PAGE)
    return render(request, "ha_drills.html", title="HA drills", found=found)


@router.get("/ha/drills/{run_id}")
def drill(request: Request, run_id: str) -> Response:
    authorize(request, P.fleet_analyse, fleet=True)
    if not run_id.isdigit() or len(run_id) > 12:
        raise NotFoundError("No such drill run; drill runs are numbered (see /ha/drills).")
    view = ha_drill_report.drill_report(get_inventory(request).db, int(run_id))
    title = f"HA drill {view.run.id}: host {view.run.host}"
    return render(
        request, "ha_drill.html", title=title, view=view, r=view.report,
        secs=ha_drill_report.seconds, stamp=lambda at: when(at, 19),
    )  # fmt: skip
