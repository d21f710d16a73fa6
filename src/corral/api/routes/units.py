"""Deployed blueprints (units) over REST: thin calls to corral.services.units.

Reading needs ``request.read``; stop, redeploy and teardown need ``request.create`` (the
people who request a unit run it), each within the caller's departments (another
department's unit answers 404). An operation is a job: the route checks that the caller may
see the unit, the job acts with the caller's roles and departments, so the service checks
them again when it claims the unit.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.api.schemas import Text256
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal, Role
from corral.services.audit import Actor, acting_as
from corral.services.jobs import JobKind, Progress
from corral.services.units import UnitService, UnitView

router = APIRouter(prefix="/api/v1", tags=["units"])
UnitId = Annotated[int, Field(ge=1, lt=2**31)]


class Operation(StrEnum):
    stop = "stop"
    redeploy = "redeploy"
    teardown = "teardown"


class UnitJob(BaseModel):
    """Stop, redeploy or tear down unit ``unit_id``, acting as the caller who asked."""

    model_config = ConfigDict(extra="forbid")

    unit_id: UnitId
    operation: Operation
    user: Text256
    roles: list[Role]
    departments: list[Text256]


def _units(state: Any) -> UnitService:
    units: UnitService = state.provisioner.units
    return units


def _run(params: UnitJob, state: Any, progress: Progress) -> UnitView:
    who = Principal(params.user, frozenset(params.roles), frozenset(params.departments))
    act = getattr(_units(state), params.operation.value)
    with acting_as(Actor(who.user, who.role_names, f"job:unit.{params.operation.value}")):
        view: UnitView = act(params.unit_id, who)
    progress(1.0)
    return view


UNIT_OPERATION = JobKind("unit.operate", UnitJob, _run)
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
    _units(request.app.state).get(unit_id, who)  # 404 for a unit the caller may not see
    params = UnitJob(
        unit_id=unit_id,
        operation=operation,
        user=who.user,
        roles=sorted(who.roles),
        departments=sorted(who.departments),
    )
    return accept(jobs, UNIT_OPERATION, params, who.user, response)
