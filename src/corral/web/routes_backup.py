"""Backups from the browser: take one now, restore a point (as a new VM or in place), follow
the job that does it (on the job page of every kind, corral.web.routes_jobs).

The work is the REST API's own jobs (``backup.run`` and ``backup.restore`` of
corral.api.routes.restore_points), submitted to the same job service with the signed-in user
as submitter, so a page, ``corral backup`` and ``POST /api/v1/backup/...`` reach one executor
and one restorer, and the writes are audited as that user's. Reading the restore points and
jobs needs ``ops.read``; starting a backup or a restore needs ``fleet.operate``, checked here
on the server. Restoring in place overwrites a VM's disks, so it needs the box ticked that says
so; the page never takes a file path. A restore as a new VM goes to the host the user
chooses among those the placement engine finds able to take a VM of its size now (the
choice is checked again here: a host outside that list is refused).
"""

from __future__ import annotations

from typing import Any

import pydantic
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from corral.api.deps import get_inventory
from corral.api.routes.restore_points import RESTORE, RUN, RestoreJob, RunJob
from corral.domain.access import Permission as P
from corral.domain.backup import Manifest
from corral.errors import NotFoundError, ValidationError
from corral.services import backup_exec, planning
from corral.services.jobs import JobKind, JobService
from corral.services.web_sessions import Viewer
from corral.web.pages import PageRoute, acting, authorize, live_fleet, read_form, redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: The restore points listed on the backup page, newest first.
POINTS_SHOWN = 100
RESTORE_MODES = ("new", "in-place")


def points(request: Request, vm_uuid: str | None = None) -> list[Manifest]:
    """The repository's restore points (of one VM), newest first."""
    repo = backup_exec.repository(request.app.state.settings)
    return repo.points(vm_uuid)[::-1]


def _jobs(request: Request) -> JobService:
    jobs: JobService = request.app.state.jobs
    return jobs


def _submit(request: Request, kind: JobKind[Any], params: BaseModel, viewer: Viewer) -> Response:
    """Queue the job; its row is audited as the viewer's, from this page."""
    with acting(request, viewer):
        job = _jobs(request).submit(kind, params, viewer.name)
    return redirect(f"/jobs/{job.id}")


@router.post("/backups/run")
async def run_now(request: Request) -> Response:
    """Back up one VM now (name or UUID, as it is in the inventory)."""
    viewer = authorize(request, P.fleet_operate, fleet=True)
    form = await read_form(request)
    ref = form.get("vm", "").strip()
    if not ref:
        raise ValidationError("name the VM to back up.")
    vm = get_inventory(request).find_vm(ref[:256])
    params = RunJob(vm=vm.uuid, by=viewer.name, roles=viewer.principal.role_names)
    return _submit(request, RUN, params, viewer)


@router.get("/backups/points/{point_id}")
def point(request: Request, point_id: str) -> Response:
    """One restore point, with the form that restores it."""
    authorize(request, P.ops_read, fleet=True)
    found = backup_exec.repository(request.app.state.settings).get(point_id)
    return render(
        request,
        "backup_point.html",
        title=f"Restore point {found.id}",
        point=found,
        targets=targets(request, found),
    )


def targets(request: Request, point: Manifest) -> tuple[str, ...]:
    """The hosts able to take a new VM of the point's VM's size now, the point's own first
    when it is one of them (a VM no longer in the inventory: the size of the smallest VM)."""
    inventory = get_inventory(request)
    try:
        vm = inventory.find_vm(point.vm_uuid)
        vcpus, memory = vm.vcpus, vm.memory_mib
    except NotFoundError:
        vcpus, memory = 1, 1
    able = planning.able_hosts(live_fleet(request), vcpus, memory)
    return tuple(sorted(able, key=lambda h: h != point.host))


@router.post("/backups/restore")
async def restore(request: Request) -> Response:
    """Restore a point as a new VM (``as_name``) or in place (``confirm`` ticked)."""
    viewer = authorize(request, P.fleet_operate, fleet=True)
    form = await read_form(request)
    found = backup_exec.repository(request.app.state.settings).get(form.get("point", ""))
    mode = form.get("mode", "")
    if mode not in RESTORE_MODES:
        raise ValidationError("choose how to restore: as a new VM, or in place.")
    as_name = form.get("as_name", "").strip() or None
    if mode == "new" and as_name is None:
        raise ValidationError("give the new VM a name.")
    if mode == "in-place":
        if form.get("confirm") != "yes":
            raise ValidationError(
                f"restoring in place overwrites the disks of {found.vm_name}; "
                "tick the box that confirms it."
            )
        as_name = None
    host = _target(request, found, form.get("host", "").strip()) if mode == "new" else None
    try:
        params = RestoreJob(
            point=found.id,
            host=host,
            as_name=as_name,
            by=viewer.name,
            roles=viewer.principal.role_names,
        )
    except pydantic.ValidationError:
        raise ValidationError(
            "a VM name is 1-63 letters, digits, dots, dashes or underscores, "
            "starting with a letter or digit."
        ) from None
    return _submit(request, RESTORE, params, viewer)


def _target(request: Request, point: Manifest, host: str) -> str | None:
    """The chosen host when it can take the VM now (none chosen: the restorer's default)."""
    if not host:
        return None
    able = targets(request, point)
    if host not in able:
        raise ValidationError(
            f"host {host[:64]} cannot take {point.vm_name} now; choose one of: "
            f"{', '.join(able) or 'none (no host has room)'}."
        )
    return host
