"""Deployed blueprints (units) over REST: thin calls to corral.services.units.

Reading needs ``request.read``; stop, redeploy and teardown need ``request.create`` (the
people who request a unit run it), each within the caller's departments (another
department's unit answers 404). An operation is a job: the route checks that the caller may
see the unit, the job acts with the caller's roles and departments, so the service checks
them again when it claims the unit. The job kind is corral.services.unit_jobs's, the one
the CLI submits too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.services.unit_jobs import Operation, unit_job, unit_job_kind
from corral.services.units import UnitService, UnitView

router = APIRouter(prefix="/api/v1", tags=["units"])
UnitId = Annotated[int, Field(ge=1, lt=2**31)]


def _units(state: Any) -> UnitService:
    units: UnitService = state.provisioner.units
    return units


UNIT_OPERATION = unit_job_kind(_units)
JOB_KINDS = (UNIT_OPERATION,)


@router.get("/units", response_model=Page[UnitView], responses=error_responses(401, 403, 422))
def list_units(
    request: Request,
    who: Annotated[Principal, require(Perm.request_read)],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[UnitView]:
    """The deployed blueprints of the caller's departments (all of them for fleet roles)."""
    return paginate(_units(request.app.state).all(who), lambda u: (u.request_id,), limit, cursor)


@router.get(
    "/units/{unit_id}", response_model=UnitView, responses=error_responses(401, 403, 404, 422)
)
def get_unit(
    request: Request, unit_id: UnitId, who: Annotated[Principal, require(Perm.request_read)]
) -> UnitView:
    """One unit (named by its request's id): network, state, operation in progress, VMs."""
    return _units(request.app.state).get(unit_id, who)


@router.post(
    "/units/{unit_id}/{operation}",
    status_code=202,
    response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 403, 404, 422)},
)
def operate_unit(
    request: Request,
    unit_id: UnitId,
    operation: Operation,
    jobs: JobsDep,
    response: Response,
    who: Annotated[Principal, require(Perm.request_create)],
) -> JobPublic:
    """Stop, redeploy (to the pristine state) or tear down a unit as one: a job (UnitView)."""
    params = unit_job(_units(request.app.state), unit_id, operation, who)  # 404: not theirs
    return accept(jobs, UNIT_OPERATION, params, who.user, response)
