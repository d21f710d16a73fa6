"""``corral plan``: placement, consolidation, evacuation, what-if and forecast on a fleet file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from corral.cli.fleet import FleetFileOption, LiveOption, fleet_snapshot
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, to_json
from corral.errors import ValidationError
from corral.services import planning
from corral.services.planning import (
    AddVMs,
    Change,
    ConsolidationMode,
    NewVM,
    PlacementStrategy,
    RemoveHost,
    ReserveCapacity,
)

plan_app = typer.Typer(
    help="Plan capacity: place, consolidate, rebalance, evacuate, what-if, forecast.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")


def _emit(
    summary: dict[str, Any], rows: list[dict[str, Any]], output: OutputFormat, title: str
) -> None:
    """JSON: the whole document. Table/CSV: the summary, then the rows."""
    if output is OutputFormat.json:
        typer.echo(to_json(summary))
        return
    flat = {k: v for k, v in summary.items() if not isinstance(v, list | dict) or not v}
    emit_object(flat, output, title=title)
    if rows:
        emit(rows, output)


def _spec(raw: str, fields: int, what: str, example: str) -> list[str]:
    parts = raw.split(":")
    if len(parts) not in (fields, fields + 1):
        raise ValidationError(f"{what} {raw!r} is malformed; write it like {example}.")
    return parts


def _int(raw: str, what: str) -> int:
    if not raw.isdigit() or int(raw) <= 0:
        raise ValidationError(f"{what} must be a positive integer, not {raw!r}.")
    return int(raw)


def _new_vm(raw: str) -> NewVM:
    name, vcpus, mem, *rest = _spec(raw, 3, "--new", "web9:2:4096[:profile]")
    return NewVM(name, _int(vcpus, "vCPUs"), _int(mem, "memory_mib"), rest[0] if rest else None)


@plan_app.command("place")
def place_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    vm: list[str] = typer.Option([], "--vm", help="Place this unplaced VM of the fleet (repeat)."),
    new: list[str] = typer.Option([], "--new", help="A new VM name:vcpus:memory_mib[:profile]."),
    strategy: PlacementStrategy = typer.Option(PlacementStrategy.spread, help="spread or stack."),
    atomic: bool = typer.Option(True, help="All or nothing for a multi-VM request."),
    output: OutputFormat = OutputOption,
) -> None:
    """Choose hosts for new VMs (default: every VM in the file without a host), saying why not."""
    fleet = fleet_snapshot(fleet_file, live).fleet
    new_vms = [_new_vm(spec) for spec in new]
    result = planning.place_vms(fleet, vm, new_vms, strategy=strategy, atomic=atomic)
    outcomes = [o.to_dict() for o in result.outcomes]
    rows = [
        {
            "vm": o["vm"],
            "status": o["status"],
            "host": o.get("host", ""),
            "rejected": ", ".join(f"{k}: {n}" for k, n in o["rejections"]["counts"].items()),
        }
        for o in outcomes
    ]
    _emit({"all_placed": result.all_placed, "outcomes": outcomes}, rows, output, "placement")


@plan_app.command("consolidate")
def consolidate_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    mode: ConsolidationMode = typer.Option(
        ConsolidationMode.auto,
        help="auto, exact (CP-SAT), heuristic (drain, few moves) or repack (bulk).",
    ),
    failures: int | None = typer.Option(None, help="N+K reserve to keep (default: settings)."),
    time_limit: float = typer.Option(10.0, help="CP-SAT time limit in seconds."),
    output: OutputFormat = OutputOption,
) -> None:
    """Fewest active hosts with fewest migrations, a safe migration order and a lower bound."""
    fleet = fleet_snapshot(fleet_file, live).fleet
    plan = planning.consolidate(fleet, mode, failures=failures, time_limit_s=time_limit)
    doc = plan.to_dict()
    doc["lower_bound_hosts"] = plan.lower_bound.hosts
    _emit(doc, doc["steps"], output, "consolidation")


@plan_app.command("rebalance")
def rebalance_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    max_migrations: int = typer.Option(10, min=1, help="At most this many migrations."),
    output: OutputFormat = OutputOption,
    apply: bool = typer.Option(
        False, "--apply", help="Carry the plan out on the live fleet with live migrations."
    ),
) -> None:
    """A few migrations that cool the hottest hosts (load and, with profiles, peak hour).

    With --apply, the plan is made on a fresh sync and carried out at once: live
    migrations a few at a time (the HA policy's migration section), Ctrl-C aborts; each
    VM that did not move is reported with why (exit code 4 then).
    """
    if apply:
        _apply_rebalance(fleet_file, max_migrations, output)
        return
    plan = planning.rebalance(fleet_snapshot(fleet_file, live).fleet, max_migrations)
    doc = plan.to_dict()
    _emit(doc, doc["steps"], output, "rebalance")


def _apply_rebalance(fleet_file: Path | None, max_migrations: int, output: OutputFormat) -> None:
    from corral.cli import context
    from corral.services.rebalance_apply import RebalanceApply

    if fleet_file is not None:
        raise ValidationError("--apply acts on the live fleet; leave out the fleet file.")
    service = RebalanceApply(context.inventory(), context.settings())

    def progress(fraction: float) -> None:
        if output is not OutputFormat.json:
            typer.echo(f"rebalance: {fraction:.0%} of the moves ended", err=True)

    report = service.apply(max_migrations, progress)
    doc = report.to_dict()
    _emit(doc, doc["moves"], output, "rebalance applied")
    if report.failed:
        raise typer.Exit(4)


@plan_app.command("evacuate")
def evacuate_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    host: list[str] = typer.Option(..., "--host", help="Host going into maintenance (repeat)."),
    keep_ha_reserve: bool = typer.Option(False, help="Also keep the N+K reserve while evacuating."),
    output: OutputFormat = OutputOption,
) -> None:
    """Move every VM off hosts for maintenance without overloading any receiver."""
    fleet = fleet_snapshot(fleet_file, live).fleet
    plan = planning.evacuate(fleet, host, keep_ha_reserve=keep_ha_reserve)
    doc = plan.to_dict()
    _emit(doc, doc["moves"], output, "evacuation")


def _changes(add: list[str], remove_host: list[str], reserve: list[str]) -> list[Change]:
    changes: list[Change] = []
    for raw in add:
        n, vcpus, mem, *rest = _spec(raw, 3, "--add", "10:2:4096[:profile]")
        changes.append(
            AddVMs(_int(n, "count"), _int(vcpus, "vCPUs"), _int(mem, "memory_mib"), *rest[:1])
        )
    changes += [RemoveHost(h) for h in remove_host]
    for raw in reserve:
        project, n, vcpus, mem = _spec(raw, 4, "--reserve", "projectX:5:4:8192")[:4]
        changes.append(
            ReserveCapacity(
                project, _int(n, "count"), _int(vcpus, "vCPUs"), _int(mem, "memory_mib")
            )
        )
    return changes


@plan_app.command("whatif")
def whatif_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    add: list[str] = typer.Option([], "--add", help="Add N VMs: N:vcpus:memory_mib[:profile]."),
    remove_host: list[str] = typer.Option([], "--remove-host", help="Remove a host (repeat)."),
    reserve: list[str] = typer.Option(
        [], "--reserve", help="Reserve for a project: name:N:vcpus:memory_mib."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Answer "what if" before/after: more VMs, fewer hosts, capacity promised to a project."""
    changes = _changes(add, remove_host, reserve)
    if not changes:
        raise ValidationError("No change given; use --add, --remove-host or --reserve.")
    result = planning.whatif(fleet_snapshot(fleet_file, live).fleet, changes).to_dict()
    rows = [
        {"metric": k, "before": v, "after": result["after"][k]} for k, v in result["before"].items()
    ]
    if output is OutputFormat.json:
        typer.echo(to_json(result))
        return
    emit(rows, output, ["metric", "before", "after"], title="what-if")
    if result["not_placed"]:
        typer.echo("not placed: " + ", ".join(result["not_placed"]))


@plan_app.command("forecast")
def forecast_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    history: Path = typer.Option(
        ..., "--history", help="CSV timestamp,host,resource,value (cpu_mhz or memory_mib)."
    ),
    horizon_days: float = typer.Option(365.0, help="How far ahead to look."),
    failures: int | None = typer.Option(None, help="HA reserve K taken off cluster capacity."),
    output: OutputFormat = OutputOption,
) -> None:
    """Days until each host, and the cluster net of its HA reserve, runs out of CPU or memory."""
    fleet = fleet_snapshot(fleet_file, live).fleet
    report = planning.forecast(fleet, history, failures=failures, horizon_days=horizon_days)
    rows = [e.to_dict() for e in report.exhaustions]
    cols = ["scope", "resource", "capacity", "current", "slope_per_day", "days_to_exhaustion"]
    emit(rows, output, [*cols, "exhausted_at"], title="time to exhaustion")
