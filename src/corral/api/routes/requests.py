"""VM requests and department quotas: thin routes over corral.services.requests and .quotas.

A requester or approver reaches only their departments' requests and quotas (another
department's answers 404); deciding needs ``request.decide`` and never one's own request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.api.deps import require, vm_target
from corral.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor, paginate
from corral.api.problems import error_responses
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.api.schemas import Purpose, Text256
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal, Target
from corral.domain.requests import RequestState, Size
from corral.errors import ValidationError
from corral.services.audit import Actor, acting_as
from corral.services.fulfil import RequestProvisioner
from corral.services.jobs import JobKind, JobService, Progress
from corral.services.quotas import Limits, QuotaService, QuotaView
from corral.services.requests import Quote, RequestService, RequestSpec, RequestView

router = APIRouter(prefix="/api/v1", tags=["requests"])
RequestId = Annotated[int, Field(ge=1, lt=2**31)]


def _requests(request: Request) -> RequestService:
    svc: RequestService = request.app.state.requests
    return svc


def _provisioner(request: Request) -> RequestProvisioner:
    svc: RequestProvisioner = request.app.state.provisioner
    return svc


class ProvisionJob(BaseModel):
    """Make the VMs of approved request ``request_id``, acting for ``actor``."""

    model_config = ConfigDict(extra="forbid")

    request_id: RequestId
    actor: Text256


def _run_provision(params: ProvisionJob, state: Any, progress: Progress) -> RequestView:
    provisioner: RequestProvisioner = state.provisioner
    with acting_as(Actor(params.actor, "system", "job:request.provision")):
        view = provisioner.provision(params.request_id, params.actor)
    progress(1.0)
    return view


PROVISION = JobKind("request.provision", ProvisionJob, _run_provision)
JOB_KINDS = (PROVISION,)


def _then_provision(
    request: Request, view: RequestView, who: Principal, response: Response
) -> RequestView:
    """A request that just became approved is provisioned by a job (its address in
    ``Location``; the request's own page shows it move on to provisioned or failed)."""
    if (
        view.state is RequestState.approved
        and view.kind == "vms"
        and request.app.state.settings.provision_on_approval
    ):
        jobs: JobService = request.app.state.jobs
        job = jobs.submit(PROVISION, ProvisionJob(request_id=view.id, actor=who.user), who.user)
        response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return view


def _quotas(request: Request) -> QuotaService:
    svc: QuotaService = request.app.state.quotas
    return svc


def request_target(request: Request) -> Target:
    """The department of the request named by ``request_id`` (none: the route answers 404)."""
    raw = str(request.path_params.get("request_id", ""))
    if not raw.isdigit() or not 1 <= int(raw) < 2**31:
        return Target(None)
    return Target(_requests(request).department_of(int(raw)))


def department_target(request: Request) -> Target:
    return Target(str(request.path_params.get("department", "")) or None)


class RequestBody(BaseModel):
    """N VMs of one size from a template, or a blueprint's tiers (``blueprint``: then template,
    count and size are the blueprint's); owner, department, purpose, environment, lease."""

    model_config = ConfigDict(extra="forbid")

    template: Text256 | None = Field(default=None, min_length=1)
    blueprint: Text256 | None = Field(default=None, min_length=1)
    count: int = Field(default=1, ge=1, le=100)
    vcpus: int | None = Field(default=None, ge=1, le=4096)
    memory_mib: int | None = Field(default=None, ge=1, le=2**40)
    disk_gb: float = Field(default=0.0, ge=0, le=1e7)
    owner: Text256 = Field(min_length=1)
    department: Text256 = Field(min_length=1)
    purpose: Purpose = Field(min_length=1)
    environment: Text256 = Field(min_length=1)
    lease_days: int = Field(ge=1, le=36500)

    def spec(self) -> RequestSpec:
        if self.blueprint is not None:
            if self.template is not None:
                raise ValidationError("give a template or a blueprint, not both.")
            size = Size(1, 1, 0.0)  # the blueprint's tiers say
        elif self.template is None or self.vcpus is None or self.memory_mib is None:
            raise ValidationError(
                "a request needs a template, vcpus and memory_mib (or a blueprint)."
            )
        else:
            size = Size(self.vcpus, self.memory_mib, self.disk_gb)
        return RequestSpec(
            template=self.template or "",
            count=self.count,
            size=size,
            owner=self.owner,
            department=self.department,
            purpose=self.purpose,
            environment=self.environment,
            lease_days=self.lease_days,
            blueprint=self.blueprint,
        )


class NewRequest(RequestBody):
    submit: bool = Field(default=False, description="Send it at once (else it stays a draft).")


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Purpose = ""


class QuotaBody(BaseModel):
    """The limits; a missing or null dimension has no limit."""

    model_config = ConfigDict(extra="forbid")

    vcpus: float | None = Field(default=None, ge=0)
    memory_mib: float | None = Field(default=None, ge=0)
    storage_gb: float | None = Field(default=None, ge=0)
    vms: float | None = Field(default=None, ge=0)
    monthly_cost: float | None = Field(default=None, ge=0)


@router.post("/request-quotes", response_model=Quote, responses=error_responses(401, 403, 413, 422))
def quote(
    request: Request, body: RequestBody, who: Annotated[Principal, require(Perm.request_create)]
) -> Quote:
    """Monthly cost, placement (with the N+K reserve) and quota of a request, before sending."""
    return _requests(request).quote(body.spec(), who)


@router.post(
    "/requests",
    response_model=RequestView,
    status_code=201,
    responses=error_responses(401, 403, 413, 422),
)
def create(
    request: Request,
    body: NewRequest,
    who: Annotated[Principal, require(Perm.request_create)],
    response: Response,
) -> RequestView:
    """A draft request, or a submitted one with ``submit`` (approved at once: its VMs are
    made by a job, named in ``Location``)."""
    view = _requests(request).create(body.spec(), who, submit=body.submit)
    return _then_provision(request, view, who, response)


@router.get("/requests", response_model=Page[RequestView], responses=error_responses(401, 403, 422))
def list_requests(
    request: Request,
    who: Annotated[Principal, require(Perm.request_read)],
    state: Annotated[RequestState | None, Query(description="Only requests in this state.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[RequestView]:
    """The requests of the caller's departments, newest first."""
    before = _before(cursor)
    rows = _requests(request).listing(who, state=state, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor((rows[-1].id,)) if more and rows else None
    return Page[RequestView](items=rows, next_cursor=next_cursor)


def _before(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    if len(key) != 1 or not isinstance(key[0], int):
        raise ValidationError("the pagination cursor is not valid for this list; start again.")
    return key[0]


@router.get(
    "/requests/{request_id}",
    response_model=RequestView,
    responses=error_responses(401, 403, 404, 422),
)
def get_request(
    request: Request,
    request_id: RequestId,
    who: Annotated[Principal, require(Perm.request_read, request_target)],
) -> RequestView:
    return _requests(request).get(request_id, who)


@router.post(
    "/requests/{request_id}/submit",
    response_model=RequestView,
    responses=error_responses(401, 403, 404, 409, 422),
)
def submit(
    request: Request,
    request_id: RequestId,
    who: Annotated[Principal, require(Perm.request_create, request_target)],
    response: Response,
) -> RequestView:
    """Send a draft: approved at once (its VMs made by a job named in ``Location``), pending
    for approvers (e-mailed), or denied."""
    return _then_provision(request, _requests(request).submit(request_id, who), who, response)


@router.post(
    "/requests/{request_id}/cancel",
    response_model=RequestView,
    responses=error_responses(401, 403, 404, 409, 413, 422),
)
def cancel(
    request: Request,
    request_id: RequestId,
    who: Annotated[Principal, require(Perm.request_create, request_target)],
    body: DecisionBody | None = None,
) -> RequestView:
    return _requests(request).cancel(request_id, who, body.note if body else "")


@router.post(
    "/requests/{request_id}/approve",
    response_model=RequestView,
    responses=error_responses(401, 403, 404, 409, 413, 422),
)
def approve(
    request: Request,
    request_id: RequestId,
    who: Annotated[Principal, require(Perm.request_decide, request_target)],
    response: Response,
    body: DecisionBody | None = None,
) -> RequestView:
    """Add the caller's approval (never on their own request); approved once the rules agree,
    and then its VMs are made by a job (named in ``Location``)."""
    view = _requests(request).approve(request_id, who, body.note if body else "")
    return _then_provision(request, view, who, response)


@router.post(
    "/requests/{request_id}/provision",
    response_model=JobPublic,
    status_code=202,
    responses={**ACCEPTED, **error_responses(401, 403, 404, 409, 422)},
)
def provision(
    request: Request,
    request_id: RequestId,
    jobs: JobsDep,
    who: Annotated[Principal, require(Perm.vm_provision, request_target)],
    response: Response,
) -> JobPublic:
    """Make the VMs of an approved request, or finish a run that stopped (never twice): a
    job; the request moves to provisioned or failed (with the reason)."""
    _provisioner(request).ready(request_id)
    return accept(
        jobs, PROVISION, ProvisionJob(request_id=request_id, actor=who.user), who.user, response
    )


@router.post(
    "/requests/{request_id}/deny",
    response_model=RequestView,
    responses=error_responses(401, 403, 404, 409, 413, 422),
)
def deny(
    request: Request,
    request_id: RequestId,
    body: DecisionBody,
    who: Annotated[Principal, require(Perm.request_decide, request_target)],
) -> RequestView:
    """Refuse a pending request; the note says why (final)."""
    return _requests(request).deny(request_id, who, body.note)


class ExtensionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(ge=1, le=36500, description="How many more days of lease.")
    reason: Purpose = Field(min_length=1)


@router.post(
    "/vms/{uuid}/lease-extensions",
    response_model=RequestView,
    status_code=201,
    responses=error_responses(401, 403, 404, 413, 422),
)
def extend_lease(
    request: Request,
    uuid: str,
    body: ExtensionBody,
    who: Annotated[Principal, require(Perm.request_create, vm_target)],
) -> RequestView:
    """Ask for a longer lease: a request an approver of the VM's department decides."""
    return _requests(request).request_extension(uuid, body.days, body.reason, who)


@router.get("/quotas", response_model=Page[QuotaView], responses=error_responses(401, 403, 422))
def list_quotas(
    request: Request,
    who: Annotated[Principal, require(Perm.request_read)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[QuotaView]:
    """Every quota the caller may see, with what its department uses."""
    return paginate(_quotas(request).all(who), lambda q: (q.department,), limit, cursor)


@router.get(
    "/quotas/{department}", response_model=QuotaView, responses=error_responses(401, 403, 404)
)
def get_quota(
    request: Request,
    department: str,
    who: Annotated[Principal, require(Perm.request_read, department_target)],
) -> QuotaView:
    return _quotas(request).get(department, who)


@router.put(
    "/quotas/{department}",
    response_model=QuotaView,
    responses=error_responses(401, 403, 404, 413, 422),
)
def set_quota(
    request: Request,
    department: str,
    body: QuotaBody,
    who: Annotated[Principal, require(Perm.quota_manage, department_target)],
) -> QuotaView:
    """Replace the department's limits (approved, unprovisioned requests count as used)."""
    limits = Limits(body.vcpus, body.memory_mib, body.storage_gb, body.vms, body.monthly_cost)
    return _quotas(request).set(department, limits, who)
