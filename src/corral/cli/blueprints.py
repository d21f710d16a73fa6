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
