"""Jobs over HTTP: follow, list and cancel the work that POST routes answered 202 for.

Reading a job needs the token too: a job's result may name VMs' owners (the
sprawl report), and whoever submitted one holds a token anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from corral.api.problems import PROBLEM_BASE, Problem, error_responses
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.errors import ValidationError
from corral.services.jobs import Job, JobCursor, JobKind, JobService, JobState, P

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

JobId = Annotated[str, Path(min_length=1, max_length=64, description="The job's id.")]


class JobPublic(BaseModel):
    """A job: where it is, and its typed result (or the problem that failed it) when done."""

    id: str
    kind: str = Field(description="What the job does, e.g. 'plan.consolidate'.")
    state: JobState
    progress: float = Field(ge=0.0, le=1.0, description="0 when queued, 1 when succeeded.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    submitted_by: str | None = Field(description="The name of the token that submitted it.")
    result: dict[str, Any] | None = Field(
        description="When succeeded: the result, in the schema of the route that submitted it."
    )
    error: Problem | None = Field(description="When failed: why, as problem details.")
    href: str = Field(description="Where to ask for this job again.")


def get_jobs(request: Request) -> JobService:
    jobs: JobService = request.app.state.jobs
    return jobs


JobsDep = Annotated[JobService, Depends(get_jobs)]

#: The responses of every route that answers 202 with a job (for its ``responses=``).
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": JobPublic, "description": "Accepted: the job runs; follow its href."}
}


def public(job: Job) -> JobPublic:
    error = None
    if job.error is not None:
        e = job.error
        error = Problem(
            type=PROBLEM_BASE + e.code, title=e.title, status=e.status, detail=e.detail, code=e.code
        )
    return JobPublic(
        id=job.id,
        kind=job.kind,
        state=job.state,
        progress=job.progress,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        submitted_by=job.submitted_by,
        result=job.result,
        error=error,
        href=f"{router.prefix}/{job.id}",
    )


def accept(
    jobs: JobService, kind: JobKind[P], params: P, actor: str, response: Response
) -> JobPublic:
    """Submit a job and answer 202 with it and its address in ``Location``."""
    job = jobs.submit(kind, params, actor)
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"{router.prefix}/{job.id}"
    return public(job)


def _after(cursor: str | None) -> JobCursor | None:
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    try:
        at, job_id = key
        return JobCursor(datetime.fromisoformat(str(at)), str(job_id))
    except ValueError:
        raise ValidationError(
            "the pagination cursor is not valid for this list; start again without one."
        ) from None


@router.get("", response_model=Page[JobPublic], responses=error_responses(401, 422))
def list_jobs(
    jobs: JobsDep,
    _who: Annotated[Principal, require(Perm.ops_read)],
    limit: Limit = 50,
    cursor: Cursor = None,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    kind: Annotated[str | None, Query(max_length=64, description="Only jobs of this kind.")] = None,
) -> Page[JobPublic]:
    """The newest jobs first, a page at a time."""
    page = jobs.list(_after(cursor), limit, state, kind)
    nxt = encode_cursor((page.next.created_at.isoformat(), page.next.id)) if page.next else None
    return Page[JobPublic](items=[public(j) for j in page.items], next_cursor=nxt, total=page.total)


@router.get("/{job_id}", response_model=JobPublic, responses=error_responses(401, 404, 422))
def get_job(
    job_id: JobId, jobs: JobsDep, _who: Annotated[Principal, require(Perm.ops_read)]
) -> JobPublic:
    return public(jobs.get(job_id))


@router.post(
    "/{job_id}/cancel", response_model=JobPublic, responses=error_responses(401, 404, 409, 422)
)
def cancel_job(
    job_id: JobId, jobs: JobsDep, _who: Annotated[Principal, require(Perm.fleet_operate)]
) -> JobPublic:
    """A queued job is cancelled at once; a running one stops at its next progress report."""
    return public(jobs.cancel(job_id))
