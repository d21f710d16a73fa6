"""The consolidation simulator over HTTP: its policies, its trace days, and runs as jobs.

The traces are the server's: PlanetLab days under ``$CORRAL_SHARED_DATA/planetlab``
(a client names a day, never a path). A run replays a whole day (seconds to
minutes), so it is a job; its result is a SimulationOut, the figures of
``corral sim consolidate -o json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.config import Settings
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.errors import NotFoundError
from corral.services import simulation
from corral.services.jobs import JobKind, Progress

router = APIRouter(prefix="/api/v1/sim", tags=["sim"])

Day = Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")]


def trace_dirs(settings: Settings) -> tuple[Path, Path]:
    """The PlanetLab days and CloudSim's VM orders under the shared-data setting."""
    if settings.shared_data is None:
        raise NotFoundError(
            "no trace folder is set; set CORRAL_SHARED_DATA to the folder holding planetlab/."
        )
    root = settings.shared_data
    return root / "planetlab", root / "published-results" / "cloudsim-vm-order"


class ParameterOut(BaseModel):
    name: str
    default: float
    description: str


class PolicyOut(BaseModel):
    family: str = Field(description="e.g. 'lr-mmt'; a policy name adds a parameter: lr-mmt-1.2.")
    summary: str
    parameters: list[ParameterOut]


class DayOut(BaseModel):
    day: str


class SimRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="e.g. lr-mmt-1.2, thr-mmt-0.8, corral"
    )
    day: Day = Field(description="A trace day, e.g. 20110303 (see /sim/days).")
    hosts: int = Field(default=800, ge=1, le=100_000, description="Hosts (half G4, half G5).")
    cloudsim_order: bool = Field(
        default=True, description="Read the VMs in CloudSim's order (else sorted by name)."
    )
    overrides: dict[Annotated[str, StringConstraints(max_length=64)], float] = Field(
        default={}, max_length=32, description="Policy parameters, name: value."
    )


class SimulationOut(BaseModel):
    day: str
    policy: str
    energy_kwh: float
    migrations: int
    slatah_pct: float
    pdm_pct: float
    slav: float
    esv: float
    energy_lower_bound_kwh: float
    energy_vs_lower_bound: float
    served_lower_bound_kwh: float
    overall_sla_violation_pct: float
    host_shutdowns: int
    vms: int
    vms_removed_idle: int
    vms_unplaced: int
    steps: int
    mean_active_hosts: float
    runtime_s: float


def _run(params: SimRunRequest, state: Any, _progress: Progress) -> SimulationOut:
    days, orders = trace_dirs(state.settings)
    order = orders / f"{params.day}.txt"
    result = simulation.run(
        days,
        params.policy,
        day=params.day,
        order_file=order if params.cloudsim_order and order.is_file() else None,
        hosts=params.hosts,
        overrides=params.overrides,
    )
    return SimulationOut.model_validate(result.as_dict())


RUN = JobKind("sim.run", SimRunRequest, _run)
JOB_KINDS = (RUN,)


@router.get("/policies", response_model=Page[PolicyOut], responses=error_responses(422))
def policies(
    _who: Annotated[Principal, require(Perm.fleet_read)], limit: Limit = 100, cursor: Cursor = None
) -> Page[PolicyOut]:
    """The consolidation policies with their parameters and defaults."""
    rows = [
        PolicyOut(
            family=p.family,
            summary=p.summary,
            parameters=[
                ParameterOut(name=a.name, default=a.default, description=a.description)
                for a in p.parameters
            ],
        )
        for p in simulation.policies()
    ]
    return paginate(sorted(rows, key=lambda p: p.family), lambda p: (p.family,), limit, cursor)


@router.get("/days", response_model=Page[DayOut], responses=error_responses(404, 422))
def days(
    request: Request,
    _who: Annotated[Principal, require(Perm.fleet_read)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[DayOut]:
    """The PlanetLab trace days the server holds."""
    found = simulation.days(trace_dirs(request.app.state.settings)[0])
    return paginate([DayOut(day=d) for d in sorted(found)], lambda d: (d.day,), limit, cursor)


@router.post(
    "/runs",
    status_code=202,
    response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)
def run(
    body: SimRunRequest,
    jobs: JobsDep,
    who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:
    """Replay one day under one policy: a job whose result is a SimulationOut."""
    return accept(jobs, RUN, body, who.user, response)
