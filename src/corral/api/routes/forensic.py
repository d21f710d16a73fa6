"""Forensic snapshots, their evidence and rollbacks over HTTP, and the signed IDS webhook.

Reading and re-hashing evidence needs ``ops.read`` (an auditor checks the chain of custody);
taking a snapshot or rolling a VM back needs ``fleet.operate`` and runs as a job. Retention
(a legal hold, its release, an expiry run now) needs ``fleet.operate`` too and answers at once:
each is a custody record in the audit log under the caller's name.

``POST /api/v1/forensic/webhook`` takes no bearer token: an intrusion-detection system
signs the body with the shared secret (``forensic_webhook_secret``) and the signature is the
authentication (corral.security.signed_webhook). Unsigned, badly signed, too old or repeated
deliveries answer 401 and nothing happens; a good one answers 202 with the snapshot's job.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.domain.forensic import Evidence
from corral.domain.text import LINE_PATTERN, TEXT_PATTERN
from corral.errors import ValidationError
from corral.services.audit import Actor, acting_as
from corral.services.forensic import OPENAPI_MARK, SIGNATURE_HEADER, ForensicService
from corral.services.jobs import JobKind, Progress

router = APIRouter(prefix="/api/v1/forensic", tags=["forensic"])

EvidenceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,80}$")]
VMRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=TEXT_PATTERN)]
WEBHOOK_ACTOR = "ids-webhook"


# -- answers -----------------------------------------------------------------------------
class EvidenceFileOut(BaseModel):
    name: str
    disk: str | None
    size: int
    sha256: str


class MovedNicOut(BaseModel):
    mac: str
    was: str = Field(description="The network (or bridge:NAME, type:TYPE) it was on.")


class EvidenceOut(BaseModel):
    id: str
    vm_uuid: str
    vm_name: str
    host: str
    taken_by: str
    taken_at: datetime
    reason: str
    files: list[EvidenceFileOut]
    isolated_to: str | None
    moved: list[MovedNicOut]
    seconds: float
    method: str


class EvidenceCheckOut(BaseModel):
    evidence: str
    files: int
    ok: bool
    problems: list[str]


class HoldOut(BaseModel):
    evidence: str
    on_hold: bool = Field(description="Whether the evidence is on legal hold now.")


class ExpiryOut(BaseModel):
    retention_days: int
    deleted: list[str] = Field(description="Evidence deleted now, past its retention.")
    held: list[str] = Field(description="Evidence past its retention but kept: on hold.")


class RollbackOut(BaseModel):
    vm_name: str
    vm_uuid: str
    point: str
    evidence: str | None = Field(description="The snapshot of the compromised state.")
    host: str
    started: bool
    seconds: float


# -- requests ----------------------------------------------------------------------------
class SnapshotRequest(BaseModel):
    vm: VMRef = Field(description="The running VM: name or UUID.")
    reason: Reason = "forensic snapshot over the API"
    isolate: VMRef | None = Field(
        default=None, description="First move its NICs onto this network of its host."
    )


class RollbackRequest(BaseModel):
    vm: VMRef
    point: EvidenceId = Field(description="The known-good restore point.")
    reason: Reason = "rollback of a compromised VM"
    evidence: bool = Field(default=True, description="Snapshot the compromised state first.")


class HoldRequest(BaseModel):
    reason: Reason = Field(description="Why: the case, the order (kept in the custody record).")


class WebhookBody(BaseModel):
    """What the intrusion-detection system signs and sends."""

    model_config = ConfigDict(extra="ignore")

    vm: VMRef = Field(description="The VM: name or UUID.")
    reason: Reason
    timestamp: float = Field(description="Unix seconds when sent; covered by the signature.")
    isolate: VMRef | None = None
    id: Annotated[str, StringConstraints(max_length=128, pattern=LINE_PATTERN)] | None = Field(
        default=None, description="The sender's event id (makes equal events distinct)."
    )


class _Submitted(BaseModel):
    """Who asked (set by the route, never by the caller): the job's writes are theirs."""

    by: str
    roles: str
    origin: str


class SnapshotJob(SnapshotRequest, _Submitted):
    pass


class RollbackJob(RollbackRequest, _Submitted):
    pass


# -- the work ----------------------------------------------------------------------------
def _service(state: Any) -> ForensicService:
    return ForensicService.from_settings(state.settings, state.inventory.db)


def _snapshot(params: SnapshotJob, state: Any, _progress: Progress) -> EvidenceOut:
    with acting_as(Actor(params.by, params.roles, params.origin)):
        done = _service(state).snapshot(
            params.vm, by=params.by, reason=params.reason, isolate=params.isolate
        )
    return EvidenceOut.model_validate(asdict(done))


def _rollback(params: RollbackJob, state: Any, _progress: Progress) -> RollbackOut:
    with acting_as(Actor(params.by, params.roles, params.origin)):
        done = _service(state).rollback(
            params.vm, params.point, by=params.by, reason=params.reason, evidence=params.evidence
        )
    return RollbackOut.model_validate(asdict(done))


SNAPSHOT = JobKind("forensic.snapshot", SnapshotJob, _snapshot)
ROLLBACK = JobKind("forensic.rollback", RollbackJob, _rollback)
JOB_KINDS = (SNAPSHOT, ROLLBACK)


def _evidence(e: Evidence) -> EvidenceOut:
    return EvidenceOut.model_validate(asdict(e))


# -- routes ------------------------------------------------------------------------------
@router.get("/snapshots", response_model=Page[EvidenceOut], responses=error_responses(401, 422))
def snapshots(
    request: Request,
    _who: Annotated[Principal, require(Perm.ops_read)],
    vm: VMRef | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[EvidenceOut]:
    """The evidence sets, oldest first (of one VM: name or UUID)."""
    found = [_evidence(e) for e in _service(request.app.state).evidence(vm)]
    return paginate(found, lambda e: (e.taken_at.isoformat(), e.id), limit, cursor)


@router.get(
    "/snapshots/{evidence_id}", response_model=EvidenceOut, responses=error_responses(401, 404)
)
def snapshot(
    evidence_id: EvidenceId, request: Request, _who: Annotated[Principal, require(Perm.ops_read)]
) -> EvidenceOut:
    """One evidence set: its custody record and every file's SHA-256."""
    return _evidence(_service(request.app.state).show(evidence_id))


@router.post(
    "/snapshots/{evidence_id}/verify",
    response_model=EvidenceCheckOut,
    responses=error_responses(401, 404),
)
def verify(
    evidence_id: EvidenceId, request: Request, _who: Annotated[Principal, require(Perm.ops_read)]
) -> EvidenceCheckOut:
    """Re-hash the evidence against its custody record; ``problems`` names every change."""
    check = _service(request.app.state).verify(evidence_id)[0]
    return EvidenceCheckOut(
        evidence=check.evidence, files=check.files, ok=check.ok, problems=list(check.problems)
    )


@router.post(
    "/snapshots", status_code=202, response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)  # fmt: skip
def take(
    body: SnapshotRequest, jobs: JobsDep, request: Request,
    who: Annotated[Principal, require(Perm.fleet_operate)], response: Response,
) -> JobPublic:  # fmt: skip
    """Snapshot a running VM's memory and disks as evidence: a job (EvidenceOut)."""
    job = SnapshotJob(**body.model_dump(), by=who.user, roles=who.role_names,
                      origin=f"api job {SNAPSHOT.name}")  # fmt: skip
    return accept(jobs, SNAPSHOT, job, who.user, response)


@router.post(
    "/rollback", status_code=202, response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)  # fmt: skip
def rollback(
    body: RollbackRequest, jobs: JobsDep, who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:  # fmt: skip
    """Roll a compromised VM back in place to a restore point: a job (RollbackOut)."""
    job = RollbackJob(**body.model_dump(), by=who.user, roles=who.role_names,
                      origin=f"api job {ROLLBACK.name}")  # fmt: skip
    return accept(jobs, ROLLBACK, job, who.user, response)


@router.post(
    "/snapshots/{evidence_id}/hold",
    response_model=HoldOut,
    responses=error_responses(401, 404, 409, 413, 422),
)
def hold(
    evidence_id: EvidenceId, body: HoldRequest, request: Request,
    who: Annotated[Principal, require(Perm.fleet_operate)],
) -> HoldOut:  # fmt: skip
    """Put evidence on legal hold: no expiry deletes it until it is released (409 when it
    is on hold already)."""
    _service(request.app.state).hold(evidence_id, by=who.user, reason=body.reason)
    return HoldOut(evidence=evidence_id, on_hold=True)


@router.post(
    "/snapshots/{evidence_id}/release",
    response_model=HoldOut,
    responses=error_responses(401, 404, 409, 413, 422),
)
def release(
    evidence_id: EvidenceId, body: HoldRequest, request: Request,
    who: Annotated[Principal, require(Perm.fleet_operate)],
) -> HoldOut:  # fmt: skip
    """End a legal hold (409 when it is not on hold); the next expiry past its retention
    deletes the evidence."""
    _service(request.app.state).release(evidence_id, by=who.user, reason=body.reason)
    return HoldOut(evidence=evidence_id, on_hold=False)


@router.post("/expire", response_model=ExpiryOut, responses=error_responses(401))
def expire(request: Request, who: Annotated[Principal, require(Perm.fleet_operate)]) -> ExpiryOut:
    """Delete the evidence older than the retention now, except what is on hold (the backup
    loop does this every round; each deletion is a custody record)."""
    done = _service(request.app.state).expire(by=who.user)
    return ExpiryOut(
        retention_days=done.retention_days, deleted=list(done.deleted), held=list(done.held)
    )


def _event(doc: dict[str, object]) -> WebhookBody:
    try:
        return WebhookBody.model_validate(doc)
    except PydanticValidationError as exc:
        raise ValidationError(f"the webhook's body is invalid: {exc.errors()[0]['msg']}") from None


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/webhook",
    status_code=202,
    response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
    openapi_extra={
        OPENAPI_MARK: True,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": WebhookBody.model_json_schema()}},
        },
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "description": "sha256=<hex HMAC-SHA256 of the exact body under the secret>",
                "schema": {"type": "string"},
            }
        ],
    },
)
def webhook(
    request: Request,
    body: Annotated[bytes, Depends(_raw_body)],
    jobs: JobsDep,
    response: Response,
) -> JobPublic:
    """An intrusion-detection event: snapshot the VM it names (a job). No bearer token: the
    body's HMAC-SHA256 signature is the authentication; 401 and nothing done without it."""
    state = request.app.state
    settings = state.settings
    secret = settings.forensic_webhook_secret
    event = _service(state).delivery(
        secret.value.encode() if secret else None,
        body,
        request.headers.get(SIGNATURE_HEADER),
        settings.forensic_webhook_max_age_s,
        _event,
    )
    client = request.client.host if request.client else "unknown"
    job = SnapshotJob(
        vm=event.vm, reason=f"IDS: {event.reason}"[:2000], isolate=event.isolate, by=WEBHOOK_ACTOR,
        roles="", origin=f"api webhook {client}" + (f" event {event.id}" if event.id else ""),
    )  # fmt: skip
    with acting_as(Actor(job.by, job.roles, job.origin)):  # the job's submission is audited
        return accept(jobs, SNAPSHOT, job, WEBHOOK_ACTOR, response)
