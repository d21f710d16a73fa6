"""A unit's stop, redeploy and teardown as a job: one kind, submitted by REST and the CLI alike.

The API's job runner runs it in the server. A CLI command records the same job and starts a
detached runner process for it, so an operation asked from a shell is in ``/jobs`` like any
other, acts with the asker's name in the audit log, and outlives the terminal that asked:
Ctrl-C or a dropped SSH session stops the following, never the operation (the unit service
itself resumes an operation whose process died; see corral.services.units).

Following a job (``follow``) reads its row until it finishes; when the runner process is
gone and the job is not finished, the job is failed as interrupted instead of waiting forever.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from corral.domain.access import Principal, Role
from corral.services.audit import Actor, acting_as
from corral.services.jobs import FINISHED, Job, JobKind, JobService, Progress
from corral.services.units import UnitService, UnitView

KIND = "unit.operate"
UnitId = Annotated[int, Field(ge=1, lt=2**31)]
Name = Annotated[str, Field(min_length=1, max_length=256)]


class Operation(StrEnum):
    stop = "stop"
    redeploy = "redeploy"
    teardown = "teardown"


#: the progress lines an operation says for each VM (redeploy: reverted, then started)
_LINES_PER_VM = {Operation.stop: 1, Operation.redeploy: 2, Operation.teardown: 1}


class UnitJob(BaseModel):
    """Stop, redeploy or tear down unit ``unit_id``, acting as the caller who asked."""

    model_config = ConfigDict(extra="forbid")

    unit_id: UnitId
    operation: Operation
    user: Name
    roles: list[Role]
    departments: list[Name]


def unit_job(units: UnitService, unit_id: int, operation: Operation, who: Principal) -> UnitJob:
    """The job's parameters, once ``who`` may see the unit (NotFoundError otherwise)."""
    units.get(unit_id, who)
    return UnitJob(
        unit_id=unit_id,
        operation=operation,
        user=who.user,
        roles=sorted(who.roles),
        departments=sorted(who.departments),
    )


def unit_job_kind(units_of: Callable[[Any], UnitService]) -> JobKind[UnitJob]:
    """The kind, finding the unit service in the runner's resources with ``units_of``.

    The service checks the caller's roles and departments again when it claims the unit.
    Progress is the share of the operation's per-VM steps reported so far."""

    def run(params: UnitJob, resources: Any, progress: Progress) -> UnitView:
        units = units_of(resources)
        who = Principal(params.user, frozenset(params.roles), frozenset(params.departments))
        vms = len(units.get(params.unit_id, who).vms)
        total = max(1, vms * _LINES_PER_VM[params.operation])
        said = 0

        def say(_line: str) -> None:
            nonlocal said
            said += 1
            progress(min(0.99, said / total))

        act = getattr(units, params.operation.value)
        with acting_as(Actor(who.user, who.role_names, f"job:unit.{params.operation.value}")):
            view: UnitView = act(params.unit_id, who, say)
        return view

    return JobKind(KIND, UnitJob, run)


def unit_result(job: Job) -> UnitView | None:
    """The unit as a finished job left it (None: the job did not succeed)."""
    if job.result is None:
        return None
    return TypeAdapter(UnitView).validate_python(job.result)


def start_runner(runner_argv: Sequence[str], job_id: str) -> subprocess.Popen[bytes]:
    """A process of its own session running the job (``runner_argv`` + the job's id): a signal
    to the asking terminal's process group does not reach it."""
    return subprocess.Popen(  # an argv list, never a shell
        [*runner_argv, job_id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def follow(
    jobs: JobService,
    job_id: str,
    runner: subprocess.Popen[bytes] | None = None,
    *,
    poll_s: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Job]:
    """The job each time its state or progress changes, the last time finished. A ``runner``
    that exited leaving the job unfinished fails it (``job-interrupted``)."""
    seen: tuple[str, float] | None = None
    while True:
        job = jobs.get(job_id)
        now = (job.state.value, round(job.progress, 2))
        if now != seen or job.state in FINISHED:
            seen = now
            yield job
        if job.state in FINISHED:
            return
        if runner is not None and runner.poll() is not None:
            job = jobs.get(job_id)
            if job.state not in FINISHED:
                yield jobs.fail_abandoned(job_id)
                return
            continue
        sleep(poll_s)


__all__ = [
    "KIND",
    "Operation",
    "UnitJob",
    "follow",
    "start_runner",
    "unit_job",
    "unit_job_kind",
    "unit_result",
]
