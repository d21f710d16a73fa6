"""``corral blueprint``: the catalog of multi-tier units requested and provisioned as one.

Thin: every decision is in corral.services.blueprints. A blueprint is requested with
``corral request create --blueprint NAME ...``.
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object

blueprint_app = typer.Typer(
    help="Blueprints: tiers of VMs requested, approved and provisioned as one unit.",
    no_args_is_help=True,
)
COLUMNS = ["name", "tiers", "vms", "description"]


def register(app: typer.Typer) -> None:
    app.add_typer(blueprint_app, name="blueprint")


@functools.cache
def _service() -> Any:
    from corral.services.blueprints import BlueprintService
    from corral.services.templates import TemplateService

    db = context.inventory().db
    return BlueprintService(db, TemplateService(db, context.settings().boot_dir))


def _row(b: Any) -> dict[str, Any]:
    return {
        "name": b.name,
        "tiers": ", ".join(
            f"{t.name}: {t.count} x {t.template}"
            + (f" (+{t.start_delay_s:g} s)" if t.start_delay_s else "")
            for t in b.in_order()
        ),
        "vms": sum(t.count for t in b.tiers),
        "description": b.description or "",
    }


@blueprint_app.command("add")
def add(
    path: Path = typer.Argument(..., help="A YAML (or JSON) file: name, description, tiers."),
    output: OutputFormat = OutputOption,
) -> None:
    """Add a blueprint; every tier's template must be in the catalog."""
    from corral.safeload import load_file

    added = _service().add_mapping(load_file(path, "blueprint"), str(path), context.os_user())
    emit([_row(added)], output, COLUMNS)


@blueprint_app.command("list")
def list_blueprints(output: OutputFormat = OutputOption) -> None:
    emit([_row(b) for b in _service().all()], output, COLUMNS)


@blueprint_app.command("show")
def show(name: str, output: OutputFormat = OutputOption) -> None:
    """A blueprint with its tiers in provision order."""
    b = _service().get(name)
    emit_object({**asdict(b), "tiers": [asdict(t) for t in b.in_order()]}, output, title=name)


@blueprint_app.command("remove")
def remove(name: str) -> None:
    """Remove a blueprint; requests made from it keep their copy of its tiers."""
    _service().remove(name)
    typer.echo(f"blueprint {name} removed")


# -- deployed blueprints (units): thin calls to corral.services.units ------------------------
UNIT_COLUMNS = ["unit", "blueprint", "department", "state", "op", "network", "vms", "error"]


@functools.cache
def _units() -> Any:
    from corral.services.units import UnitService

    return UnitService(context.inventory())


def _me() -> Any:
    from corral.domain.access import local_administrator

    return local_administrator(context.os_user())


def _unit_row(u: Any) -> dict[str, Any]:
    return {
        "unit": u.request_id,
        "blueprint": u.blueprint,
        "department": u.department,
        "state": u.state,
        "op": u.op or "",
        "network": u.network,
        "vms": ", ".join(f"{v.name}@{v.host}" for v in u.vms),
        "error": u.last_error or "",
    }


@blueprint_app.command("units")
def units(output: OutputFormat = OutputOption) -> None:
    """The deployed blueprints (a unit is named by its request's id)."""
    emit([_unit_row(u) for u in _units().all(_me())], output, UNIT_COLUMNS)


WaitOption = typer.Option(
    True,
    "--wait/--no-wait",
    help="Follow the job to its end (default; Ctrl-C stops following, not the operation), "
    "or print the job and return at once.",
)


@blueprint_app.command("stop")
def stop(unit: int, wait: bool = WaitOption, output: OutputFormat = OutputOption) -> None:
    """Power a unit's VMs off, in reverse start order (a job: 'corral jobs' lists it)."""
    _operate(unit, "stop", wait, output)


@blueprint_app.command("redeploy")
def redeploy(unit: int, wait: bool = WaitOption, output: OutputFormat = OutputOption) -> None:
    """Revert every VM of a unit to its pristine snapshot and start the unit in order (a job)."""
    _operate(unit, "redeploy", wait, output)


@blueprint_app.command("teardown")
def teardown(unit: int, wait: bool = WaitOption, output: OutputFormat = OutputOption) -> None:
    """Delete a unit's VMs with their volumes, and its network (a job)."""
    _operate(unit, "teardown", wait, output)


@blueprint_app.command("run-job", hidden=True)
def run_job(job_id: str) -> None:
    """The detached runner a unit command starts: runs that one queued job here."""
    _jobs().run_here(job_id)


def _jobs() -> Any:
    from corral.services.jobs import JobService
    from corral.services.unit_jobs import unit_job_kind

    jobs = JobService(context.inventory().db)
    jobs.register(unit_job_kind(lambda _resources: _units()))
    return jobs


def _operate(unit: int, operation: str, wait: bool, output: OutputFormat) -> None:
    """Submit the operation as a job run by a detached process; follow it unless told not to."""
    import sys

    from corral.services import unit_jobs as uj

    jobs = _jobs()
    params = uj.unit_job(_units(), unit, uj.Operation(operation), _me())
    job = jobs.submit(uj.unit_job_kind(lambda _r: _units()), params, params.user, start=False)
    runner = uj.start_runner([sys.executable, "-m", "corral", "blueprint", "run-job"], job.id)
    typer.echo(f"unit {unit}: {operation} is job {job.id} ('corral jobs show {job.id}')", err=True)
    if not wait:
        emit([{"job": job.id, "kind": job.kind, "state": job.state.value}], output, JOB_COLUMNS)
        return
    try:
        for seen in uj.follow(jobs, job.id, runner):
            typer.echo(f"job {job.id}: {seen.state.value} {seen.progress:.0%}", err=True)
    except KeyboardInterrupt:
        typer.echo(f"stopped following; job {job.id} goes on ('corral jobs show').", err=True)
        raise typer.Exit(130) from None
    _ended(seen, uj.unit_result(seen), output)


def _ended(job: Any, view: Any, output: OutputFormat) -> None:
    from corral.errors import CorralError

    if view is None:
        detail = job.error.detail if job.error else f"the job ended {job.state.value}."
        raise CorralError(f"job {job.id}: {detail}")
    emit([_unit_row(view)], output, UNIT_COLUMNS)


JOB_COLUMNS = ["job", "kind", "state"]
