"""``corral plan``: placement, consolidation, evacuation, what-if and forecast on a fleet file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import typer

from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, to_json
from corral.engines.planning import (
    VM,
    AddVMs,
    Fleet,
    RemoveHost,
    ReserveCapacity,
    consolidate,
    evacuate,
    fleet_from_records,
    forecast_fleet,
    load_fleet,
    load_history,
    place,
    what_if,
)
from corral.engines.planning.consolidation.rebalance import rebalance
from corral.engines.planning.forecast.whatif import Change
from corral.engines.planning.placement.outcome import outcome_to_dict
from corral.engines.planning.placement.scheduler import Scheduler
from corral.errors import ValidationError

plan_app = typer.Typer(
    help="Plan capacity: place, consolidate, rebalance, evacuate, what-if, forecast.",
    no_args_is_help=True,
)

FleetFileOption = typer.Option(
    None, "--fleet-file", "-f", help="YAML or JSON fleet file (hosts, vms, settings, profiles)."
)
LiveOption = typer.Option(
    False, "--live", help="Plan on the live inventory (last sync) instead of a fleet file."
)
#: libvirt domain states that hold their host's CPU and memory.
RUNNING_STATES = frozenset({"running", "paused", "blocked", "pmsuspended", "crashed"})


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")


def read_fleet(path: Path | None, live: bool = False) -> Fleet:
    """The fleet to plan on: a fleet file, or the live inventory's last sync."""
    if live == (path is not None):
        raise ValidationError("Give exactly one of --fleet-file FILE or --live.")
    if path is not None:
        return load_fleet(path)
    from corral.cli import context  # the inventory needs settings and a database

    inventory = context.inventory()
    hosts, vms = inventory_records(inventory.list_hosts(), inventory.list_vms().items)
    return fleet_from_records(hosts, vms)


def inventory_records(
    hosts: list[dict[str, Any]], vms: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Turn inventory listings into fleet-file records; incomplete entries are left out.

    Hosts without CPU or memory figures (never synced) are skipped; their VMs,
    templates and VMs without sizes are skipped too. A VM name seen twice gets
    ``@host`` appended so fleet names stay unique.
    """
    host_recs = [
        _host_record(h) for h in hosts if h.get("cpus") and h.get("mhz") and h.get("memory_mib")
    ]
    known = {h["name"] for h in host_recs}
    usable = [
        v
        for v in vms
        if v.get("host") in known
        and not v.get("is_template")
        and v.get("vcpus")
        and v.get("memory_mib")
    ]
    seen = Counter(v["name"] for v in usable)
    vm_recs = [
        {
            "name": v["name"] if seen[v["name"]] == 1 else f"{v['name']}#{v.get('uuid') or i}",
            "host": v["host"],
            "vcpus": int(v["vcpus"]),
            "memory_mib": int(v["memory_mib"]),
            "state": "running" if v.get("state") in RUNNING_STATES else "shutoff",
            **(
                {"protection": v["protection_tier"]}
                if v.get("protection_tier") in PROTECTIONS
                else {}
            ),
        }
        for i, v in enumerate(usable)
    ]
    return host_recs, vm_recs


PROTECTIONS = frozenset({"replicated", "restart", "none"})


def _host_record(h: dict[str, Any]) -> dict[str, Any]:
    sockets = int(h.get("sockets") or 0)
    cores = int(h.get("cores_per_socket") or 0)
    threads = int(h.get("threads_per_core") or 0)
    whole = sockets * cores * threads == int(h["cpus"])
    return {
        "name": h["name"],
        "cores": sockets * cores if whole else int(h["cpus"]),
        "threads_per_core": threads if whole else 1,
        "cpu_mhz": int(h["mhz"]),
        "memory_mib": int(h["memory_mib"]),
        "cpu_model": h.get("cpu_model") or None,
        "features": list(h.get("cpu_features") or []),
    }


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


def _new_vm(raw: str) -> VM:
    name, vcpus, mem, *rest = _spec(raw, 3, "--new", "web9:2:4096[:profile]")
    return VM(
        name, _int(vcpus, "vCPUs"), _int(mem, "memory_mib"), profile=rest[0] if rest else None
    )


@plan_app.command("place")
def place_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    vm: list[str] = typer.Option([], "--vm", help="Place this unplaced VM of the fleet (repeat)."),
    new: list[str] = typer.Option([], "--new", help="A new VM name:vcpus:memory_mib[:profile]."),
    strategy: str = typer.Option("spread", help="spread or stack."),
    atomic: bool = typer.Option(True, help="All or nothing for a multi-VM request."),
    output: OutputFormat = OutputOption,
) -> None:
    """Choose hosts for new VMs (default: every VM in the file without a host), saying why not."""
    fleet = read_fleet(fleet_file, live)
    request = [fleet.vm(n) for n in vm] + [_new_vm(s) for s in new]
    placed = [v for v in request[: len(vm)] if v.host is not None]
    if placed:
        raise ValidationError(
            f"VM {placed[0].name} already runs on {placed[0].host}; "
            "plan evacuate or consolidate moves placed VMs."
        )
    if not vm and not new:
        request = [v for v in fleet.vms if v.host is None]
    if not request:
        raise ValidationError("Nothing to place: the fleet has no VM without a host; use --new.")
    result = place(fleet, request, Scheduler.default(strategy), atomic=atomic)
    outcomes = [outcome_to_dict(o) for o in result.outcomes]
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
    mode: str = typer.Option(
        "auto", help="auto, exact (CP-SAT), heuristic (drain, few moves) or repack (bulk)."
    ),
    failures: int | None = typer.Option(None, help="N+K reserve to keep (default: settings)."),
    time_limit: float = typer.Option(10.0, help="CP-SAT time limit in seconds."),
    output: OutputFormat = OutputOption,
) -> None:
    """Fewest active hosts with fewest migrations, a safe migration order and a lower bound."""
    plan = consolidate(
        read_fleet(fleet_file, live), mode, failures=failures, time_limit_s=time_limit
    )
    doc = plan.to_dict()
    doc["lower_bound_hosts"] = plan.lower_bound.hosts
    _emit(doc, doc["steps"], output, "consolidation")


@plan_app.command("rebalance")
def rebalance_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    max_migrations: int = typer.Option(10, min=1, help="At most this many migrations."),
    output: OutputFormat = OutputOption,
) -> None:
    """A few migrations that cool the hottest hosts (load and, with profiles, peak hour)."""
    plan = rebalance(read_fleet(fleet_file, live), max_migrations)
    doc = plan.to_dict()
    _emit(doc, doc["steps"], output, "rebalance")


@plan_app.command("evacuate")
def evacuate_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    host: list[str] = typer.Option(..., "--host", help="Host going into maintenance (repeat)."),
    keep_ha_reserve: bool = typer.Option(False, help="Also keep the N+K reserve while evacuating."),
    output: OutputFormat = OutputOption,
) -> None:
    """Move every VM off hosts for maintenance without overloading any receiver."""
    plan = evacuate(read_fleet(fleet_file, live), host, keep_ha_reserve=keep_ha_reserve)
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
    result = what_if(read_fleet(fleet_file, live), changes).to_dict()
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
    fleet = read_fleet(fleet_file, live)
    k = fleet.settings.ha_host_failures if failures is None else failures
    rows = [e.to_dict() for e in forecast_fleet(fleet, load_history(history), k, horizon_days)]
    cols = ["scope", "resource", "capacity", "current", "slope_per_day", "days_to_exhaustion"]
    emit(rows, output, [*cols, "exhausted_at"], title="time to exhaustion")
