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


@blueprint_app.command("stop")
def stop(unit: int, output: OutputFormat = OutputOption) -> None:
    """Power a unit's VMs off, in reverse start order."""
    emit([_unit_row(_units().stop(unit, _me(), typer.echo))], output, UNIT_COLUMNS)


@blueprint_app.command("redeploy")
def redeploy(unit: int, output: OutputFormat = OutputOption) -> None:
    """Revert every VM of a unit to its pristine snapshot and start the unit in order."""
    emit([_unit_row(_units().redeploy(unit, _me(), typer.echo))], output, UNIT_COLUMNS)


@blueprint_app.command("teardown")
def teardown(unit: int, output: OutputFormat = OutputOption) -> None:
    """Delete a unit's VMs with their volumes, and its network."""
    emit([_unit_row(_units().teardown(unit, _me(), typer.echo))], output, UNIT_COLUMNS)
