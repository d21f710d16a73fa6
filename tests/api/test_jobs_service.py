"""The job service on SQLite and PostgreSQL: lifecycle, failure as problem details, cancel,
restart recovery and keyset paging. The work is a real function run by the real thread pool;
events let the test hold a job in ``running`` without timing assumptions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from corral.errors import ConflictError, NotFoundError, ValidationError
from corral.services.jobs import Job, JobCursor, JobKind, JobService, JobState, Progress
from corral.store import models as m
from corral.store.db import Database


class SumParams(BaseModel):
    numbers: list[int]


class SumResult(BaseModel):
    total: int
    at: datetime


def _sum(params: SumParams, _resources: Any, progress: Progress) -> SumResult:
    if any(n < 0 for n in params.numbers):
        raise ValidationError("numbers must not be negative.")
    for i, _ in enumerate(params.numbers):
        progress((i + 1) / len(params.numbers))
    return SumResult(total=sum(params.numbers), at=datetime(2026, 1, 2, tzinfo=UTC))


SUM = JobKind("test.sum", SumParams, _sum)


class Gate:
    """Holds a job inside its work until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()

    def run(self, params: SumParams, _resources: Any, progress: Progress) -> SumResult:
        self.entered.set()
        assert self.open.wait(30), "the test never opened the gate"
        progress(0.5)
        return SumResult(total=sum(params.numbers), at=datetime(2026, 1, 2, tzinfo=UTC))


def wait_finished(jobs: JobService, job_id: str) -> Job:
    for _ in range(600):
        job = jobs.get(job_id)
        if job.state not in (JobState.queued, JobState.running):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {jobs.get(job_id)}")


@pytest.fixture
def jobs(db: Database) -> Iterator[JobService]:
    service = JobService(db, workers=2)
    yield service
    service.shutdown()


def test_job_succeeds_with_its_typed_result_as_json(jobs: JobService) -> None:
    job = jobs.submit(SUM, SumParams(numbers=[1, 2, 3]), "alice")
    assert job.state is JobState.queued and job.progress == 0.0
    done = wait_finished(jobs, job.id)
    assert done.state is JobState.succeeded
    assert done.result == {"total": 6, "at": "2026-01-02T00:00:00Z"}
    assert done.progress == 1.0 and done.error is None and done.submitted_by == "alice"
    assert done.started_at is not None and done.finished_at is not None
    assert done.created_at <= done.started_at <= done.finished_at


def test_job_that_refuses_its_input_fails_with_problem_details(jobs: JobService) -> None:
    job = jobs.submit(SUM, SumParams(numbers=[1, -1]))
    done = wait_finished(jobs, job.id)
    assert done.state is JobState.failed and done.result is None
    assert done.error is not None
    assert (done.error.code, done.error.status) == ("validation-failed", 422)
    assert done.error.detail == "numbers must not be negative."


def test_job_hitting_a_bug_fails_as_internal_error(jobs: JobService) -> None:
    def broken(_p: SumParams, _r: Any, _g: Progress) -> SumResult:
        raise ZeroDivisionError("boom")

    done = wait_finished(
        jobs, jobs.submit(JobKind("test.broken", SumParams, broken), SumParams(numbers=[])).id
    )
    assert done.state is JobState.failed and done.error is not None
    assert done.error.code == "internal-error" and "boom" not in done.error.detail


def test_running_job_is_seen_running_then_cancelled_at_its_next_progress(jobs: JobService) -> None:
    gate = Gate()
    job = jobs.submit(JobKind("test.gate", SumParams, gate.run), SumParams(numbers=[1]))
    assert gate.entered.wait(30)
    running = jobs.get(job.id)
    assert running.state is JobState.running and running.started_at is not None
    assert jobs.cancel(job.id).state is JobState.running  # asked, not yet stopped
    gate.open.set()
    done = wait_finished(jobs, job.id)
    assert done.state is JobState.cancelled and done.result is None
    with pytest.raises(ConflictError):
        jobs.cancel(job.id)


def test_queued_job_is_cancelled_at_once_and_never_runs(db: Database) -> None:
    jobs = JobService(db, workers=1)
    gate = Gate()
    try:
        first = jobs.submit(JobKind("test.gate", SumParams, gate.run), SumParams(numbers=[1]))
        assert gate.entered.wait(30)  # the only worker is busy: the next one stays queued
        second = jobs.submit(SUM, SumParams(numbers=[5]))
        assert jobs.cancel(second.id).state is JobState.cancelled
        gate.open.set()
        assert wait_finished(jobs, first.id).state is JobState.succeeded
        jobs.shutdown(wait=True)
        assert jobs.get(second.id).state is JobState.cancelled
        assert jobs.get(second.id).started_at is None
    finally:
        gate.open.set()
        jobs.shutdown()


def test_unknown_job_is_not_found(jobs: JobService) -> None:
    with pytest.raises(NotFoundError):
        jobs.get("nope")
    with pytest.raises(NotFoundError):
        jobs.cancel("nope")


def _row(db: Database, job_id: str, state: JobState, at: datetime) -> None:
    with db.session() as s:
        s.add(
            m.Job(
                id=job_id,
                kind=SUM.name,
                state=state.value,
                progress=0.3,
                params={"numbers": [2, 3]},
                submitted_by="before-restart",
                cancel_requested=False,
                created_at=at,
                started_at=at if state is JobState.running else None,
            )
        )


def test_restart_fails_running_jobs_and_runs_queued_ones_again(db: Database) -> None:
    """As the rows a killed server leaves: a running job failed, a queued one run."""
    at = datetime(2026, 3, 1, tzinfo=UTC)
    _row(db, "was-running", JobState.running, at)
    _row(db, "was-queued", JobState.queued, at + timedelta(seconds=1))
    jobs = JobService(db)
    jobs.register(SUM)
    try:
        assert jobs.recover() == (1, 1)
        failed = jobs.get("was-running")
        assert failed.state is JobState.failed and failed.error is not None
        assert failed.error.code == "job-interrupted" and failed.finished_at is not None
        rerun = wait_finished(jobs, "was-queued")
        assert rerun.state is JobState.succeeded and rerun.result is not None
        assert rerun.result["total"] == 5
    finally:
        jobs.shutdown()


def test_listing_pages_newest_first_without_gaps_or_repeats(db: Database) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(7):  # two share a creation time: the id breaks the tie
        _row(db, f"job-{i}", JobState.queued, base + timedelta(seconds=min(i, 5)))
    jobs = JobService(db)
    seen: list[str] = []
    after: JobCursor | None = None
    while True:
        page = jobs.list(after, limit=3)
        assert page.total == 7
        seen += [j.id for j in page.items]
        if page.next is None:
            break
        after = page.next
    assert seen == ["job-6", "job-5", "job-4", "job-3", "job-2", "job-1", "job-0"]
    assert [j.id for j in jobs.list(limit=10, state=JobState.running).items] == []
    with pytest.raises(ValidationError):
        jobs.list(limit=0)
