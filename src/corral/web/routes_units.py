"""Blueprints and deployed units in the browser: the catalog (each blueprint's tiers, VMs
and monthly cost, and a link that requests it), the units of the viewer's departments, and
a unit's page with its VMs, network and state and the stop, redeploy and teardown buttons.

Reading the catalog needs ``fleet.read``, as ``GET /api/v1/blueprints``; reading units needs
``request.read`` within the viewer's departments (another department's unit is "not
found"), as ``GET /api/v1/units``. An operation is the REST API's own ``unit.operate`` job
(``request.create``, a CSRF-checked form; teardown only with its box ticked), acting with
the viewer's roles and departments so the unit service checks them again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.domain.access import Permission as P
from corral.errors import NotFoundError, ValidationError
from corral.services.blueprint_catalog import catalog
from corral.services.blueprints import BlueprintService
from corral.services.jobs import JobService
from corral.services.requests import RequestService
from corral.services.templates import TemplateService
from corral.services.unit_jobs import Operation, unit_job_kind
from corral.services.unit_jobs import unit_job as unit_job_params
from corral.services.units import UnitService
from corral.services.web_sessions import sees_fleet
from corral.web import routes_jobs
from corral.web.pages import PageRoute, acting, authorize, read_form, redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _units(request: Request) -> UnitService:
    units: UnitService = request.app.state.provisioner.units
    return units


#: the REST API's own job kind: the runner finds the unit service in the app's state
UNIT_OPERATION = unit_job_kind(lambda state: state.provisioner.units)


def _jobs(request: Request) -> JobService:
    jobs: JobService = request.app.state.jobs
    return jobs


@router.get("/blueprints")
def blueprints(request: Request) -> Response:
    authorize(request, P.fleet_read)
    db = request.app.state.inventory.db
    service = BlueprintService(db, TemplateService(db, request.app.state.settings.boot_dir))
    requests: RequestService = request.app.state.requests
    return render(
        request, "blueprints.html", title="Blueprints", entries=catalog(service, requests.prices)
    )


@router.get("/units")
def units(request: Request) -> Response:
    viewer = authorize(request, P.request_read)
    return render(request, "units.html", title="Units", units=_units(request).all(viewer.principal))


@router.get("/units/{unit_id}")
def unit(request: Request, unit_id: str) -> Response:
    viewer = authorize(request, P.request_read)
    found = _units(request).get(_id(unit_id), viewer.principal)
    return render(request, "unit.html", title=f"Unit {found.request_id}", unit=found)


@router.post("/units/{unit_id}/{operation}")
async def operate(request: Request, unit_id: str, operation: str) -> Response:
    """Stop, redeploy or tear down a unit: a job, followed on its page."""
    viewer = authorize(request, P.request_create)
    form = await read_form(request)
    try:
        op = Operation(operation)
    except ValueError:
        raise NotFoundError(
            "no such operation; a unit is stopped, redeployed or torn down."
        ) from None
    who = viewer.principal
    found = _units(request).get(_id(unit_id), who)  # "not found" outside their departments
    if op is Operation.teardown and form.get("confirm") != "yes":
        raise ValidationError(
            f"tearing unit {found.request_id} down deletes its VMs and network; "
            "tick the box that confirms it."
        )
    params = unit_job_params(_units(request), found.request_id, op, who)
    with acting(request, viewer):
        job = _jobs(request).submit(UNIT_OPERATION, params, viewer.name)
    return redirect(f"/units/jobs/{job.id}")


@router.get("/units/jobs/{job_id}")
def unit_job(request: Request, job_id: str) -> Response:
    """A unit operation's job: its state until done (the page reloads), then the unit's.
    Its submitter sees it, and those who read every department's units."""
    viewer = authorize(request, P.request_read)
    found = routes_jobs.find(request, job_id, viewer)
    mine = found is not None and (
        found.submitted_by == viewer.name or sees_fleet(viewer, P.request_read)
    )
    if found is None or found.kind != UNIT_OPERATION.name or not mine:
        raise NotFoundError("no such unit job; start one from the unit's page.")
    return routes_jobs.page(request, found)


def _id(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise NotFoundError("no such unit; a unit is named by its request's number.")
    return int(text)
