"""Jobs: work that takes seconds or more, run in the server's thread pool, kept in the database.

A caller submits a *kind* (a name, a pydantic model of its parameters, and the
function that does the work) with its parameters and gets a job back at once;
a worker thread runs it and records progress, the typed result (as JSON) or
the error (as problem details). Because the job and its parameters are rows,
they outlive the server process. On the next start (``recover``):

- a job that was **running** is marked *failed* with the code ``job-interrupted``.
  It is not run again: the runner cannot know how far it got, a job of a later
  kind may act on the hypervisors, and a planning job would now see a different
  live fleet; the caller decides whether to submit it again.
- a job still **queued** is run again: nothing of it had started, and its
  parameters are stored, so running it is exactly what was asked for.

One server process per database runs jobs; a second one would take the first's
running jobs for interrupted ones when it starts.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import and_, func, or_, select

from corral.errors import ConflictError, CorralError, NotFoundError, ValidationError
from corral.store import models as m
from corral.store.db import Database

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
P = TypeVar("P", bound=BaseModel)
MAX_PAGE = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled})


@dataclass(frozen=True, slots=True)
class JobProblem:
    """Why a job failed, in the fields of an RFC 9457 problem-details object."""

    code: str
    status: int
    title: str
    detail: str

    @classmethod
    def of(cls, status: int, code: str, detail: str) -> JobProblem:
        return cls(code, status, HTTPStatus(status).phrase, detail)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    state: JobState
    progress: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    submitted_by: str | None
    result: dict[str, Any] | None
    error: JobProblem | None


@dataclass(frozen=True, slots=True)
class JobCursor:
    """Where a listing (newest first) continues: after this creation time and id."""

    created_at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class JobList:
    items: list[Job]
    next: JobCursor | None
    total: int


class JobCancelled(Exception):
    """Raised by ``Progress`` inside a job whose cancellation was asked for."""


class Progress:
    """Handed to a running job: report how far it is; raises JobCancelled when asked to stop."""

    def __init__(self, service: JobService, job_id: str) -> None:
        self._service = service
        self._id = job_id
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if fraction - self._last < 0.01:
            return
        self._last = fraction
        if self._service._set_progress(self._id, fraction):
            raise JobCancelled


@dataclass(frozen=True, slots=True)
class JobKind(Generic[P]):
    """A kind of job: its name, its parameters' model, and the function doing the work.

    ``run`` gets the parameters, the app's resources (whatever the runner was
    built with, e.g. the API's ``app.state``) and a ``Progress``; it returns a
    typed result (pydantic model or dataclass), stored as its JSON.
    """

    name: str
    params: type[P]
    run: Callable[[P, Any, Progress], object]


class JobService:
    """Submit, run, list and cancel jobs; a small thread pool does the work."""

    def __init__(
        self, db: Database, resources: Any = None, *, workers: int = 2, clock: Clock = utcnow
    ) -> None:
        self.db = db
        self.resources = resources
        self.clock = clock
        self._kinds: dict[str, JobKind[Any]] = {}
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- kinds and start-up ------------------------------------------------------
    def register(self, *kinds: JobKind[Any]) -> None:
        for kind in kinds:
            self._kinds[kind.name] = kind

    @property
    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def recover(self, interrupted: bool = True) -> tuple[int, int]:
        """After a restart: fail the jobs that were running (unless ``interrupted`` is False:
        a server of several processes does that once, before its workers start, so that one
        worker starting late cannot fail a job another runs), run the queued ones again.

        Returns (failed, requeued).
        """
        failed = self.fail_interrupted() if interrupted else 0
        with self.db.session() as s:
            queued = list(
                s.scalars(
                    select(m.Job.id)
                    .where(m.Job.state == JobState.queued.value)
                    .order_by(m.Job.created_at, m.Job.id)
                )
            )
        for job_id in queued:
            self._executor().submit(self._run, job_id)  # claimed once, whoever runs it
        if failed or queued:
            log.warning(
                "jobs after restart: %d interrupted (failed), %d queued again", failed, len(queued)
            )
        return failed, len(queued)

    def fail_interrupted(self) -> int:
        """Mark the jobs left running by a stopped server failed; how many there were."""
        problem = JobProblem.of(
            500,
            "job-interrupted",
            "The server stopped while this job was running; submit it again.",
        )
        with self.db.session() as s:
            running = list(s.scalars(select(m.Job).where(m.Job.state == JobState.running.value)))
            for row in running:
                row.state = JobState.failed.value
                row.error = _problem_json(problem)
                row.finished_at = self.clock()
        return len(running)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=not wait)

    # -- the API -----------------------------------------------------------------
    def submit(
        self, kind: JobKind[P], params: P, actor: str | None = None, *, start: bool = True
    ) -> Job:
        """Record the job as queued and hand it to a worker; returns at once.

        ``start=False`` only records it: another process runs it (``run_here``), e.g. the
        detached runner a CLI command starts, so the work outlives the command."""
        self.register(kind)
        row = m.Job(
            id=uuid.uuid4().hex,
            kind=kind.name,
            state=JobState.queued.value,
            progress=0.0,
            params=params.model_dump(mode="json", exclude_unset=True),
            submitted_by=actor,
            cancel_requested=False,
            created_at=self.clock(),
        )
        with self.db.session() as s:
            s.add(row)
            s.flush()
            job = _job(row)
        if start:
            self._executor().submit(self._run, job.id)
        return job

    def run_here(self, job_id: str) -> Job:
        """Run a queued job in the calling thread (nothing if another runner claimed it)."""
        self._run(job_id)
        return self.get(job_id)

    def fail_abandoned(self, job_id: str) -> Job:
        """A job whose runner process is known to be gone, still queued or running: failed
        with ``job-interrupted`` (the same answer a server restart gives)."""
        problem = JobProblem.of(
            500, "job-interrupted", "The process running this job stopped; submit it again."
        )
        with self.db.session() as s:
            row = s.get(m.Job, job_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no job {job_id[:40]!r}; 'corral jobs list' shows the jobs.")
            if JobState(row.state) not in FINISHED:
                row.state = JobState.failed.value
                row.error = _problem_json(problem)
                row.finished_at = self.clock()
            s.flush()
            return _job(row)

    def get(self, job_id: str) -> Job:
        with self.db.session() as s:
            row = s.get(m.Job, job_id)
            if row is None:
                raise NotFoundError(f"no job {job_id[:40]!r}; 'corral jobs list' shows the jobs.")
            return _job(row)

    def list(
        self,
        after: JobCursor | None = None,
        limit: int = 50,
        state: JobState | None = None,
        kind: str | None = None,
    ) -> JobList:
        """Newest first, ``limit`` at a time; ``next`` continues the listing."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}.")
        filters = []
        if state is not None:
            filters.append(m.Job.state == state.value)
        if kind is not None:
            filters.append(m.Job.kind == kind)
        query = select(m.Job).where(*filters)
        query = query.order_by(m.Job.created_at.desc(), m.Job.id.desc())
        if after is not None:
            query = query.where(
                or_(
                    m.Job.created_at < after.created_at,
                    and_(m.Job.created_at == after.created_at, m.Job.id < after.id),
                )
            )
        with self.db.session() as s:
            rows = list(s.scalars(query.limit(limit + 1)))
            items = [_job(r) for r in rows[:limit]]
            total = s.scalar(select(func.count()).select_from(m.Job).where(*filters)) or 0
        more = len(rows) > limit
        last = items[-1] if items else None
        cursor = JobCursor(last.created_at, last.id) if more and last else None
        return JobList(items, cursor, total)

    def cancel(self, job_id: str) -> Job:
        """A queued job is cancelled at once; a running one at its next progress report."""
        with self.db.session() as s:
            row = s.get(m.Job, job_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no job {job_id[:40]!r}; 'corral jobs list' shows the jobs.")
            if JobState(row.state) in FINISHED:
                raise ConflictError(f"job {job_id} has already {row.state}; nothing to cancel.")
            if row.state == JobState.queued.value:
                row.state = JobState.cancelled.value
                row.finished_at = self.clock()
            else:
                row.cancel_requested = True
            s.flush()
            return _job(row)

    # -- the worker side ---------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="corral-job")
            return self._pool

    def _run(self, job_id: str) -> None:
        try:
            claimed = self._claim(job_id)
            if claimed is None:
                return
            kind, params = claimed
            result = kind.run(params, self.resources, Progress(self, job_id))
            payload = TypeAdapter(type(result)).dump_python(result, mode="json", by_alias=True)
            self._finish(job_id, JobState.succeeded, result=payload)
        except JobCancelled:
            self._finish(job_id, JobState.cancelled)
        except CorralError as exc:
            self._finish(
                job_id, JobState.failed, error=JobProblem.of(exc.http_status, exc.code, exc.message)
            )
        except Exception:
            log.exception("job %s failed", job_id)
            problem = JobProblem.of(
                500, "internal-error", "Corral hit an unexpected error; see the server log."
            )
            self._finish(job_id, JobState.failed, error=problem)

    def _claim(self, job_id: str) -> tuple[JobKind[Any], BaseModel] | None:
        """Move a queued job to running; None when it is no longer queued (e.g. cancelled)."""
        with self.db.session() as s:
            row = s.get(m.Job, job_id, with_for_update=True)
            if row is None or row.state != JobState.queued.value:
                return None
            kind = self._kinds.get(row.kind)
            if kind is None:
                raise ValidationError(f"this server does not know jobs of kind {row.kind!r}.")
            try:
                params = kind.params.model_validate(row.params)
            except PydanticValidationError as exc:
                raise ValidationError(
                    f"the job's parameters are invalid: {exc.errors()[0]['msg']}"
                ) from None
            row.state = JobState.running.value
            row.started_at = self.clock()
        return kind, params

    def _set_progress(self, job_id: str, fraction: float) -> bool:
        """Record progress; True when a cancellation was asked for."""
        with self.db.session() as s:
            row = s.get(m.Job, job_id)
            if row is None:
                return True
            row.progress = fraction
            return bool(row.cancel_requested)

    def _finish(
        self,
        job_id: str,
        state: JobState,
        result: dict[str, Any] | None = None,
        error: JobProblem | None = None,
    ) -> None:
        with self.db.session() as s:
            row = s.get(m.Job, job_id)
            if row is None:
                return
            row.state = state.value
            row.finished_at = self.clock()
            if state is JobState.succeeded:
                row.progress = 1.0
            row.result = result
            row.error = _problem_json(error) if error else None


def _problem_json(problem: JobProblem) -> dict[str, Any]:
    return {
        "code": problem.code,
        "status": problem.status,
        "title": problem.title,
        "detail": problem.detail,
    }


def _job(row: m.Job) -> Job:
    error = row.error
    return Job(
        id=row.id,
        kind=row.kind,
        state=JobState(row.state),
        progress=row.progress,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        submitted_by=row.submitted_by,
        result=row.result,
        error=JobProblem(**error) if error else None,
    )
