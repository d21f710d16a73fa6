"""Restore points and restores over HTTP: list and show points, verify one, run the due
backups, restore and restore-test (jobs), list restore tests, collect garbage.

Reading the catalog needs ``ops.read``; everything that takes, deletes, holds or restores
needs ``fleet.operate``. A restored copy's disks go beside the original's: the API takes no file
path from a caller (the CLI's ``--disk-dir`` is for the host's administrator).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.routes.forensic import HoldRequest
from corral.api.routes.jobs import ACCEPTED, JobPublic, JobsDep, accept
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.domain.backup import Manifest
from corral.services import backup as backup_service
from corral.services import backup_exec, backup_holds
from corral.services.audit import Actor, acting_as
from corral.services.backup_restore_test import RestoreTester
from corral.services.backup_restore_test import history as restore_history
from corral.services.jobs import JobKind, Progress
from corral.services.restore import Restorer

router = APIRouter(prefix="/api/v1/backup", tags=["backup"])

PointId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,80}$")]
VMName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]


class FileOut(BaseModel):
    name: str
    disk: str | None
    size: int
    sha256: str


class PointOut(BaseModel):
    id: str
    vm_uuid: str
    vm_name: str
    host: str
    kind: str = Field(description="full or incremental.")
    parent: str | None = Field(description="The point an incremental needs (None: a full).")
    checkpoint: str
    taken_at: datetime
    bytes: int
    fallback: str | None = Field(description="Why a full was taken where an incremental was due.")
    files: list[FileOut]


class VerifiedOut(BaseModel):
    point: str
    ok: bool
    problems: list[str]


class GcOut(BaseModel):
    kept: dict[str, str]
    removed: list[str]
    dry_run: bool
    held: list[str] = Field(description="Points no rule keeps, kept by a legal hold.")


class PointHoldOut(BaseModel):
    point: str
    on_hold: bool = Field(description="Whether the point is on legal hold now.")


class OutcomeOut(BaseModel):
    vm: str
    status: str = Field(description="done, skipped or failed.")
    point: str | None
    kind: str | None
    bytes: int
    seconds: float
    fallback: str | None
    detail: str
    redone: list[str]


class RunOut(BaseModel):
    outcomes: list[OutcomeOut]


class RestoredOut(BaseModel):
    point: str
    mode: str = Field(description="new or in-place.")
    host: str
    vm_name: str
    vm_uuid: str
    disks: list[str]
    started: bool
    seconds: float


class RunRequest(BaseModel):
    vm: VMName | None = Field(default=None, description="Back up this VM now; else the due ones.")


class RestoreRequest(BaseModel):
    point: PointId
    host: VMName | None = Field(default=None, description="Target host (default: the VM's).")
    as_name: VMName | None = Field(
        default=None, description="Restore as a new VM of this name; else in place."
    )
    start: bool = True


class _Submitted(BaseModel):
    """Who submitted a job (set by the route, never by the caller): its writes are audited
    as theirs, although a job runs in another thread than the request."""

    by: str
    roles: str


class RunJob(RunRequest, _Submitted):
    pass


class RestoreJob(RestoreRequest, _Submitted):
    pass


def _as(params: _Submitted, kind: str) -> Actor:
    return Actor(user=params.by, roles=params.roles, origin=f"api job {kind}")


class GcRequest(BaseModel):
    dry_run: bool = False


def _point(p: Manifest) -> PointOut:
    doc: dict[str, Any] = asdict(p)
    doc["bytes"] = p.size
    return PointOut.model_validate(doc)


def _run(params: RunJob, state: Any, _progress: Progress) -> RunOut:
    settings = state.settings
    policy = backup_service.load_policy(settings)
    executor = backup_exec.Executor.from_settings(settings, state.inventory.db, policy)
    with acting_as(_as(params, RUN_KIND)):
        outcomes = executor.run(params.vm).outcomes
    return RunOut.model_validate({"outcomes": [asdict(o) for o in outcomes]})


def _restore(params: RestoreJob, state: Any, _progress: Progress) -> RestoredOut:
    restorer = Restorer.from_settings(state.settings, state.inventory.db)
    with acting_as(_as(params, RESTORE_KIND)):
        done = restorer.restore(
            params.point, host=params.host, as_name=params.as_name, start=params.start
        )
    return RestoredOut.model_validate(asdict(done))


class RestoreTestOut(BaseModel):
    vm: str
    point: str
    host: str
    network: str = Field(description="The isolated network (no forward) it booted on.")
    ok: bool = Field(description="Whether the restored VM booted.")
    detail: str
    restore_seconds: float
    seconds: float = Field(description="Restore + boot: the RTO measured.")
    rto_minutes: int | None
    rto_met: bool | None
    tested_at: datetime
    state: str = Field(
        description="running (claimed: its process at work, or dead until the next sweep "
        "ends it as failed) or ended."
    )


class RestoreTestsOut(BaseModel):
    results: list[RestoreTestOut]


class RestoreTestRequest(BaseModel):
    vm: VMName | None = Field(default=None, description="Test this VM's newest point now.")
    point: PointId | None = Field(default=None, description="Test this restore point.")
    host: VMName | None = Field(default=None, description="Boot it on this host.")


class RestoreTestJob(RestoreTestRequest, _Submitted):
    pass


def _restore_test(params: RestoreTestJob, state: Any, _progress: Progress) -> RestoreTestsOut:
    policy = backup_service.load_policy(state.settings)
    tester = RestoreTester.from_settings(state.settings, state.inventory.db, policy)
    with acting_as(_as(params, TEST_KIND)):
        results = tester.run(params.vm, point=params.point, host=params.host)
    return RestoreTestsOut.model_validate({"results": [asdict(r) for r in results]})


RUN_KIND, RESTORE_KIND, TEST_KIND = "backup.run", "backup.restore", "backup.restore_test"
RUN = JobKind(RUN_KIND, RunJob, _run)
RESTORE = JobKind(RESTORE_KIND, RestoreJob, _restore)
RESTORE_TEST = JobKind(TEST_KIND, RestoreTestJob, _restore_test)
JOB_KINDS = (RUN, RESTORE, RESTORE_TEST)


@router.get("/points", response_model=Page[PointOut], responses=error_responses(401, 422))
def points(
    request: Request,
    _who: Annotated[Principal, require(Perm.ops_read)],
    vm: VMName | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[PointOut]:
    """The restore points in the repository, oldest first (of one VM: name or UUID)."""
    repo = backup_exec.repository(request.app.state.settings)
    found = [_point(p) for p in repo.points() if vm is None or vm in (p.vm_name, p.vm_uuid)]
    return paginate(found, lambda p: (p.taken_at.isoformat(), p.id), limit, cursor)


@router.get("/points/{point_id}", response_model=PointOut, responses=error_responses(401, 404))
def point(
    point_id: PointId, request: Request, _who: Annotated[Principal, require(Perm.ops_read)]
) -> PointOut:
    """One restore point's manifest."""
    return _point(backup_exec.repository(request.app.state.settings).get(point_id))


@router.post(
    "/points/{point_id}/verify", response_model=VerifiedOut, responses=error_responses(401, 404)
)
def verify(
    point_id: PointId, request: Request, _who: Annotated[Principal, require(Perm.fleet_operate)]
) -> VerifiedOut:
    """Re-hash the point's files against its manifest (the catalog records the verdict)."""
    state = request.app.state
    repo = backup_exec.repository(state.settings)
    result = backup_exec.verify(state.inventory.db, repo, point_id)[0]
    return VerifiedOut(point=result.point, ok=result.ok, problems=list(result.problems))


@router.post("/gc", response_model=GcOut, responses=error_responses(401, 413, 422))
def gc(
    body: GcRequest, request: Request, _who: Annotated[Principal, require(Perm.fleet_operate)]
) -> GcOut:
    """Delete the points no retention rule keeps; never the parent of a kept point."""
    state = request.app.state
    repo = backup_exec.repository(state.settings)
    policy = backup_service.load_policy(state.settings)
    result = backup_exec.gc(state.inventory.db, repo, policy, dry_run=body.dry_run)
    return GcOut(kept=result.kept, removed=list(result.removed), dry_run=result.dry_run,
                 held=list(result.held))  # fmt: skip


@router.post(
    "/points/{point_id}/hold",
    response_model=PointHoldOut,
    responses=error_responses(401, 404, 409, 413, 422),
)
def hold(
    point_id: PointId, body: HoldRequest, request: Request,
    who: Annotated[Principal, require(Perm.fleet_operate)],
) -> PointHoldOut:  # fmt: skip
    """Put a restore point on legal hold: no retention run deletes it, nor the parents it
    needs, until it is released (409 when it is on hold already)."""
    return _holding(request, point_id, body.reason, who.user, on=True)


@router.post(
    "/points/{point_id}/release",
    response_model=PointHoldOut,
    responses=error_responses(401, 404, 409, 413, 422),
)
def release(
    point_id: PointId, body: HoldRequest, request: Request,
    who: Annotated[Principal, require(Perm.fleet_operate)],
) -> PointHoldOut:  # fmt: skip
    """End a restore point's legal hold (409 when it is not on hold)."""
    return _holding(request, point_id, body.reason, who.user, on=False)


def _holding(request: Request, point_id: str, reason: str, by: str, *, on: bool) -> PointHoldOut:
    state = request.app.state
    repo = backup_exec.repository(state.settings)
    change = backup_holds.hold if on else backup_holds.release
    change(state.inventory.db, repo, point_id, by=by, reason=reason)
    return PointHoldOut(point=point_id, on_hold=on)


@router.post(
    "/run", status_code=202, response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)  # fmt: skip
def run(
    body: RunRequest, jobs: JobsDep, who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:  # fmt: skip
    """Take the due backups (or one VM's now): a job whose result is a RunOut."""
    job = RunJob(**body.model_dump(), by=who.user, roles=who.role_names)
    return accept(jobs, RUN, job, who.user, response)


@router.post(
    "/restore", status_code=202, response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)  # fmt: skip
def restore(
    body: RestoreRequest, jobs: JobsDep, who: Annotated[Principal, require(Perm.fleet_operate)],
    response: Response,
) -> JobPublic:  # fmt: skip
    """Restore a VM from a restore point, as a new VM or in place: a job (RestoredOut)."""
    job = RestoreJob(**body.model_dump(), by=who.user, roles=who.role_names)
    return accept(jobs, RESTORE, job, who.user, response)


@router.post(
    "/restore-tests", status_code=202, response_model=JobPublic,
    responses={**ACCEPTED, **error_responses(401, 413, 422)},
)  # fmt: skip
def restore_test(
    body: RestoreTestRequest, jobs: JobsDep,
    who: Annotated[Principal, require(Perm.fleet_operate)], response: Response,
) -> JobPublic:  # fmt: skip
    """Restore and boot a point on an isolated network, timed, then remove it (one VM's newest
    point, one point, or every VM due for a test): a job whose result is a RestoreTestsOut."""
    job = RestoreTestJob(**body.model_dump(), by=who.user, roles=who.role_names)
    return accept(jobs, RESTORE_TEST, job, who.user, response)


@router.get(
    "/restore-tests", response_model=Page[RestoreTestOut], responses=error_responses(401, 422)
)
def restore_tests(
    request: Request,
    _who: Annotated[Principal, require(Perm.ops_read)],
    vm: VMName | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[RestoreTestOut]:
    """The stored restore tests, newest first (of one VM: name or UUID)."""
    found = [
        RestoreTestOut.model_validate(asdict(r))
        for r in restore_history(request.app.state.inventory.db, vm, limit=1000)
    ]
    return paginate(found, lambda r: (r.tested_at.isoformat(), r.point), limit, cursor)
