"""Capacity planning in the browser: where a VM of a size would go (every host ranked, with
each filter's refusal and each weigher's score), what if a host left or VMs came, and the
consolidation plan.

The answers are the planning service's (corral.services.planning) on the live inventory's
last sync, as ``POST /api/v1/plan/place|whatif`` give them; reading needs ``fleet.analyse``
across the fleet, like those routes. Place and what-if change nothing, so their forms are
GET and their answers are links that can be shared. Consolidation can take seconds, so it is
the REST API's own ``plan.consolidate`` job (``fleet.operate``, a CSRF-checked form), followed
on its page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.deps import get_inventory
from corral.api.routes.metrics import get_metrics_store
from corral.api.routes.plan import CONSOLIDATE, ConsolidateRequest
from corral.domain.access import Permission as P
from corral.errors import NotFoundError, ValidationError
from corral.services import capacity_runway, planning
from corral.services.jobs import JobService
from corral.web import routes_jobs
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

#: The place and what-if forms' fields and what they start with.
FIELDS = {
    "vcpus": "",
    "memory_mib": "",
    "strategy": "spread",
    "remove": "",
    "add": "",
    "add_vcpus": "2",
    "add_memory_mib": "4096",
}
#: Largest size or count the forms take (the REST API's own bounds are wider).
MAX_VCPUS, MAX_MIB, MAX_COUNT = 512, 2**24, 10_000
MODES = tuple(m.value for m in planning.ConsolidationMode)


@dataclass(frozen=True, slots=True)
class WhatIf:
    """A what-if answer as the page shows it: the service's result and how many more VMs of
    the added size the fleet still holds afterwards."""

    result: planning.WhatIfResult
    fits: bool
    headroom: int
    size: tuple[int, int]
    #: days until CPU, memory and storage run out, before and after
    runway: tuple[capacity_runway.Runway, capacity_runway.Runway]


@router.get("/plan")
def plan(request: Request) -> Response:
    authorize(request, P.fleet_analyse, fleet=True)
    form = query(request, FIELDS)
    fleet = live_fleet(request)
    ranking = _ranking(fleet, form) if form["vcpus"] or form["memory_mib"] else None
    whatif = _whatif(request, fleet, form) if form["remove"] or form["add"] else None
    return render(
        request,
        "plan.html",
        title="Capacity planning",
        form=form,
        hosts=[h.name for h in fleet.hosts],
        weighers=[name for name, _ in ranking[0].scores] if ranking and ranking[0].scores else [],
        ranking=ranking,
        whatif=whatif,
        strategies=[s.value for s in planning.PlacementStrategy],
        modes=MODES,
    )


def _ranking(fleet: planning.Fleet, form: dict[str, str]) -> tuple[planning.HostRank, ...]:
    vcpus = _whole(form["vcpus"], "the vCPUs", MAX_VCPUS)
    memory = _whole(form["memory_mib"], "the memory (MiB)", MAX_MIB)
    try:
        strategy = planning.PlacementStrategy(form["strategy"])
    except ValueError:
        raise ValidationError("choose spread or stack.") from None
    return planning.rank_hosts(fleet, planning.NewVM("new-vm", vcpus, memory), strategy)


def _whatif(request: Request, fleet: planning.Fleet, form: dict[str, str]) -> WhatIf:
    changes: list[planning.Change] = []
    if form["remove"]:
        fleet.host(form["remove"][:256])  # NotFoundError names an unknown host
        changes.append(planning.RemoveHost(form["remove"]))
    vcpus = _whole(form["add_vcpus"], "the added VMs' vCPUs", MAX_VCPUS)
    memory = _whole(form["add_memory_mib"], "the added VMs' memory (MiB)", MAX_MIB)
    if form["add"]:
        count = _whole(form["add"], "the number of VMs to add", MAX_COUNT)
        changes.append(planning.AddVMs(count, vcpus, memory))
    result = planning.whatif(fleet, changes)
    return WhatIf(
        result=result,
        fits=not result.not_placed,
        headroom=planning.headroom(result.after, vcpus, memory),
        size=(vcpus, memory),
        runway=capacity_runway.before_after(
            get_inventory(request).db, get_metrics_store(request), fleet, result, int(time.time())
        ),
    )


def _whole(text: str, what: str, top: int) -> int:
    if not text.isdigit() or len(text) > 9 or not 1 <= int(text) <= top:
        raise ValidationError(f"{what} must be a whole number from 1 to {top:,}.")
    return int(text)


@router.post("/plan/consolidate")
async def consolidate(request: Request) -> Response:
    """Start the consolidation job on the live fleet; its page follows it."""
    viewer = authorize(request, P.fleet_operate, fleet=True)
    form = await read_form(request)
    mode = form.get("mode", "auto")
    if mode not in MODES:
        raise ValidationError(f"choose a consolidation mode: {', '.join(MODES)}.")
    params = ConsolidateRequest(live=True, mode=planning.ConsolidationMode(mode))
    with acting(request, viewer):
        job = _jobs(request).submit(CONSOLIDATE, params, viewer.name)
    return redirect(f"/plan/jobs/{job.id}")


@router.get("/plan/jobs/{job_id}")
def plan_job(request: Request, job_id: str) -> Response:
    """A consolidation job: its state until done (the page reloads), then its plan."""
    viewer = authorize(request, P.fleet_analyse, fleet=True)
    found = routes_jobs.find(request, job_id, viewer)
    if found is None or found.kind != CONSOLIDATE.name:
        raise NotFoundError("no such consolidation job; start one from the planning page.")
    return routes_jobs.page(request, found)


def _jobs(request: Request) -> JobService:
    jobs: JobService = request.app.state.jobs
    return jobs
