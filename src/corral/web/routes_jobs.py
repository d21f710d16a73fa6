"""Following a job in the browser, whatever its kind: its state and progress until it is
done (the page reloads itself), then its result or the one sentence of its error.

Every kind the job service runs has its page here (``/jobs/{id}``): backups and restores,
consolidation and rebalance plans, unit operations, drills, maintenance, reports. The kinds
the dashboard starts itself show their result as they do on their own pages; any other kind
shows the fields of its typed result. Who sees a job: whoever reads jobs across the fleet
(``ops.read``, as ``GET /api/v1/jobs/{id}``), and the person who started it (a requester
follows their own unit operation); to anyone else it does not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.domain.access import Permission as P
from corral.errors import NotFoundError
from corral.services.jobs import Job, JobService, JobState
from corral.services.web_sessions import Viewer, may, sees_fleet
from corral.web.pages import PageRoute, authorize, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: Where each family of jobs is started, by the prefix of its kind: (title, page, its name).
FAMILIES = (
    ("backup.run", "Backup job", "/backups", "the backups"),
    ("backup.restore", "Restore job", "/backups", "the backups"),
    ("backup.", "Backup job", "/backups", "the backups"),
    ("plan.consolidate", "Consolidation plan", "/plan", "planning"),
    ("plan.", "Planning job", "/plan", "planning"),
    ("unit.", "Unit operation", "/units", "the units"),
    ("ha.drill", "HA drill", "/ha/drills", "the drills"),
    ("ha.", "HA job", "/ha", "high availability"),
    ("request.", "Request job", "/requests", "the requests"),
    ("sprawl.", "Sprawl job", "/sprawl", "sprawl"),
)
OTHER = ("", "Job", "/admin", "the fleet")


def find(request: Request, job_id: str, viewer: Viewer) -> Job | None:
    """The job when it exists and ``viewer`` may follow it, else None."""
    if len(job_id) > 64:
        return None
    jobs: JobService = request.app.state.jobs
    try:
        found = jobs.get(job_id)
    except NotFoundError:
        return None
    readable = may(viewer, P.ops_read) and sees_fleet(viewer, P.ops_read)
    return found if readable or found.submitted_by == viewer.name else None


def page(request: Request, found: Job) -> Response:
    """The job's page: facts and progress, then its result (one template for every kind)."""
    _, title, back, back_name = next((f for f in FAMILIES if found.kind.startswith(f[0])), OTHER)
    return render(
        request,
        "job.html",
        title=title,
        job=found,
        done=found.state not in (JobState.queued, JobState.running),
        back=back,
        back_name=back_name,
    )


@router.get("/jobs/{job_id}")
def job(request: Request, job_id: str) -> Response:
    viewer = authorize(request, P.self_read)
    found = find(request, job_id, viewer)
    if found is None:
        raise NotFoundError("no such job among those you may follow.")
    return page(request, found)
