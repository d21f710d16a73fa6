"""``corral backup``: the effective policy, the day's staggered schedule, coverage, patch windows.

Thin commands: read the fleet (``--fleet-file F`` or ``--live``) and the policy, call
corral.services.backup, render. ``--output json`` prints the service's whole result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from corral.cli import context
from corral.cli.fleet import FleetFileOption, LiveOption, fleet_snapshot
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, to_json
from corral.services import backup as backup_service

backup_app = typer.Typer(
    help="Backup: policy per tier and VM, a staggered schedule that meets every RPO, coverage.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    from corral.cli import backup_exec

    app.add_typer(backup_app, name="backup")
    backup_exec.add_commands(backup_app)


def _policy() -> backup_service.Policy:
    return backup_service.load_policy(context.settings())


def _plan(fleet_file: Path | None, live: bool) -> backup_service.PlanResult:
    snapshot = fleet_snapshot(fleet_file, live)
    metrics = backup_service.recorded_metrics(context.settings()) if live else None
    return backup_service.plan(snapshot, _policy(), metrics)


def _emit(doc: dict[str, Any], head: dict[str, Any], rows: list[dict[str, Any]],
          output: OutputFormat, title: str) -> None:  # fmt: skip
    if output is OutputFormat.json:
        typer.echo(to_json(doc))
        return
    emit_object(head, output, title=title)
    if rows:
        emit(rows, output)


@backup_app.command("policy")
def policy_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Each tier's RPO, RTO, retention and consistency; with a fleet, each VM's effective policy."""
    snapshot = fleet_snapshot(fleet_file, live) if fleet_file is not None or live else None
    view = backup_service.policy_view(_policy(), snapshot)
    doc = view.to_dict()
    rows = [
        {**{k: v for k, v in t.items() if k != "retention"},
         "retention": ",".join(f"{k}={n}" for k, n in t["retention"].items() if n)}
        for t in doc["tiers"]
    ]  # fmt: skip
    head = {"source": view.source, "default_tier": view.default_tier}
    _emit(doc, head, rows, output, "backup policy")
    if view.vms and output is not OutputFormat.json:
        emit(doc["vms"], output)


@backup_app.command("plan")
def plan_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Start times per VM that meet every RPO without choking a host or datastore; misses and
    what would fix them."""
    result = _plan(fleet_file, live)
    doc = result.to_dict()
    rows = [
        {"vm": s["vm"], "tier": s["tier"], "host": s["host"], "datastore": s["datastore"],
         "runs": s["runs_per_day"], "minutes": s["duration_minutes"],
         "starts": " ".join(s["starts"][:6]) + (" …" if len(s["starts"]) > 6 else "")}
        for s in doc["scheduled"]
    ]  # fmt: skip
    rows += [
        {"vm": m["vm"], "tier": m["tier"], "host": m["host"], "datastore": m["datastore"],
         "runs": "MISS", "minutes": m["reason"],
         "starts": m["text"] + " — fix: " + "; ".join(f["text"] for f in m["fixes"])}
        for m in doc["misses"]
    ]  # fmt: skip
    _emit(doc, doc["summary"], rows, output, "backup plan")
    if output is not OutputFormat.json:
        for note in result.notes:
            typer.echo(f"note: {note}", err=True)


@backup_app.command("coverage")
def coverage_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    output: OutputFormat = OutputOption,
) -> None:
    """VMs with no planned backup meeting their RPO, and why."""
    cov = backup_service.coverage(_plan(fleet_file, live))
    doc = cov.to_dict()
    head = {"vms": cov.vms, "covered": cov.covered, "uncovered": len(cov.uncovered),
            "rebuilt": cov.rebuilt}  # fmt: skip
    _emit(doc, head, doc["uncovered"], output, "backup coverage")


@backup_app.command("patch-windows")
def patch_cmd(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    window: str = typer.Option("01:00-05:00", help="Maintenance hours, e.g. 22:00-04:00."),
    day: list[str] = typer.Option(
        list(backup_service.DAYS), "--day", help="Days allowed (mon..sun; repeat)."
    ),
    per_host: int = typer.Option(1, min=1, help="VMs of one host patched at once."),
    minutes: int = typer.Option(30, min=1, help="Minutes one VM's patching takes."),
    output: OutputFormat = OutputOption,
) -> None:
    """A weekly patch slot per VM, staggered per host; anti-affinity peers never together."""
    snapshot = fleet_snapshot(fleet_file, live)
    result = backup_service.patch_windows(snapshot, window, day, per_host, minutes)
    doc = result.to_dict()
    head = {"window": doc["window"], "days": doc["days"], "per_host": doc["per_host"],
            "planned": len(doc["slots"]), "unplaced": doc["unplaced"]}  # fmt: skip
    rows = [{k: s[k] for k in ("vm", "host", "day", "start", "minutes")} for s in doc["slots"]]
    _emit(doc, head, rows, output, "patch windows")
