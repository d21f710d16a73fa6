"""``corral sprawl`` (detectors, Bitbrains run, seed scenario) and ``corral cost`` (prices).

Thin commands: read files, call the pure engines, print. Money figures are in
the cost model's currency, per month unless a column says yearly.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, to_json
from corral.engines.costing import (
    Dimension,
    chargeback,
    default_cost_model_text,
    licence_report,
    price_fleet,
)
from corral.engines.costing.model import CostModel as CostModelT
from corral.engines.sprawl import (
    DETECTORS,
    Finding,
    RightSizeMode,
    RightSizingParams,
    SprawlAnalysis,
    analyse,
    build_detectors,
)
from corral.engines.sprawl.bitbrains import load_bitbrains
from corral.engines.sprawl.inventory_file import Inventory, load_inventory
from corral.engines.sprawl.model import epoch_to_datetime
from corral.engines.sprawl.scenario import ScenarioAssumptions, describe, run_scenario

if TYPE_CHECKING:
    from corral.reports.html import ReportData

sprawl_app = typer.Typer(
    help="Sprawl: idle, powered-off, orphaned, expired VMs and right-sizing.", no_args_is_help=True
)
cost_app = typer.Typer(
    help="Cost model: monthly cost per VM, chargeback, licences.", no_args_is_help=True
)

CostModelOption = typer.Option(
    None, "--cost-model", help="Cost model YAML (default: the shipped, documented defaults)."
)
InventoryOption = typer.Option(
    ..., "--inventory-file", "-i", help="YAML/JSON list of VM records, or {vms, hosts, volumes}."
)
ModeOption = typer.Option(
    RightSizeMode.moderate, "--mode", help="conservative (max), moderate (p95), aggressive."
)
HeadroomOption = typer.Option(0.2, "--headroom", min=0.0, help="Headroom above demand (0.2 = 20%).")


def register(app: typer.Typer) -> None:
    app.add_typer(sprawl_app, name="sprawl")
    app.add_typer(cost_app, name="cost")


@sprawl_app.command("bitbrains")
def bitbrains(
    data_dir: Path = typer.Option(..., "--data-dir", help="The bitbrains-rnd folder."),
    month: str = typer.Option("2013-7", "--month", help="Month folder: 2013-7, 2013-8, 2013-9."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N VMs."),
    assumed_disk_gb: float = typer.Option(50.0, help="Disk per VM (the trace has none)."),
    cost_model: Path | None = CostModelOption,
    mode: RightSizeMode = ModeOption,
    headroom: float = HeadroomOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Idle and oversized VMs in the Bitbrains Rnd traces, and what they are worth."""
    model = _model(cost_model)
    fleet = load_bitbrains(data_dir, month, limit, assumed_disk_gb)
    result = analyse(
        fleet.vms,
        epoch_to_datetime(fleet.metrics.end),
        model,
        metrics=fleet.metrics,
        detectors=build_detectors(enabled=("idle",)),
        rightsizing=RightSizingParams(mode=mode, headroom=headroom),
    )
    head = bitbrains_summary(result)
    head["assumed_disk_gb_per_vm"] = assumed_disk_gb
    head["window"] = f"{epoch_to_datetime(fleet.metrics.start):%Y-%m-%d} .. {_end(result)}"
    _emit_analysis(head, result, output, f"Bitbrains Rnd {month}: sprawl under the cost model")


def bitbrains_summary(result: SprawlAnalysis) -> dict[str, Any]:
    """Counts and money of a Bitbrains run (idle, oversized CPU/memory, undecided)."""
    s = result.summary()
    cpu_over = sum(1 for r in result.rightsizing if r.cpu and r.cpu.verdict == "oversized")
    mem_over = sum(1 for r in result.rightsizing if r.memory and r.memory.verdict == "oversized")
    return {
        "vms": s["vms"],
        "idle_vms": s["by_category"].get("idle", {}).get("count", 0),
        "idle_undecided": len(result.insufficient),
        "oversized_vms": s["oversized_vms"],
        "oversized_cpu": cpu_over,
        "oversized_memory": mem_over,
        "undersized_vms": s["undersized_vms"],
        "rightsizing_undecided": len(result.rightsizing_insufficient),
        "currency": s["currency"],
        "fleet_monthly_cost": s["fleet_monthly_cost"],
        "idle_monthly": s["reclaimable_monthly"],
        "rightsizing_monthly": s["rightsizing_monthly"],
        "waste_monthly": s["waste_monthly"],
        "waste_yearly": s["waste_yearly"],
    }


@sprawl_app.command("scenario")
def scenario(
    vms: int = typer.Option(150, "--vms", min=1, help="Fleet size."),
    seed: int = typer.Option(1, "--seed", help="Random seed of the fleet."),
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """The seed's figure: sprawl waste of a fleet with stated, sourced sprawl rates."""
    model = _model(cost_model)
    assumptions = ScenarioAssumptions()
    result = run_scenario(model, vms, seed, assumptions)
    head = {k: v for k, v in result.summary().items() if k != "by_category"}
    head["seed"] = seed
    rows = describe(assumptions)
    if output is OutputFormat.json:
        doc = {"summary": head, "by_category": _category_rows(result), "assumptions": rows}
        typer.echo(to_json(doc))
        return
    emit_object(head, output, title=f"Sprawl scenario: {vms} VMs, seed {seed}")
    emit(_category_rows(result), output, title="Waste by category (each VM counted once)")
    emit(rows, output, title="Assumptions")


@sprawl_app.command("findings")
def findings(
    inventory_file: Path = InventoryOption,
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Inventory-based findings (powered off, orphaned, snapshots, owner, purpose, lease)."""
    model = _model(cost_model)
    inv = load_inventory(inventory_file)
    enabled = tuple(name for name in DETECTORS if name != "idle")
    result = analyse(
        inv.vms,
        _now(inv),
        model,
        hosts=inv.hosts,
        volumes=inv.volumes,
        detectors=build_detectors(enabled=enabled),
    )
    rows = [_finding_row(f) for f in result.findings]
    rows += [
        {"subject": i.subject_name, "category": f"insufficient:{i.detector}", "evidence": i.reason}
        for i in result.insufficient
    ]
    cols = ["subject", "category", "monthly", "confidence", "also", "evidence", "action"]
    emit(rows, output, cols, title=f"Sprawl findings ({model.currency}/month)")


@sprawl_app.command("report")
def report(
    days: int = typer.Option(30, min=1, max=400, help="Metrics window in days."),
    cost_model: Path | None = CostModelOption,
    html: Path | None = typer.Option(
        None, "--html", help="Also write the standalone HTML report (charts, scorecard) to FILE."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """The live fleet's sprawl: inventory and metrics history, priced (each VM counted once)."""
    from corral.reports.html import html_target, write_html

    if html is not None:
        html_target(html)  # refuse a missing folder before the analysis runs
    data = live_report_data(_model(cost_model), days)
    result = data.analysis
    if html is not None:
        path = write_html(html, data)
        typer.echo(f"HTML report written to {path}", err=output is OutputFormat.json)
    if output is OutputFormat.json:
        typer.echo(
            to_json(
                {
                    "summary": result.summary(),
                    "findings": [_finding_row(f) for f in result.findings],
                    "scorecard": [asdict(s) for s in data.signs],
                    "waste_over_time": [
                        {
                            "at": p.at,
                            "vms": p.vms,
                            "waste": round(p.waste, 2),
                            "at_risk": round(p.at_risk, 2),
                            "by_category": {
                                c.value: {"count": p.counts[c], "monthly": round(v, 2)}
                                for c, v in p.monthly.items()
                            },
                        }
                        for p in data.history
                    ],
                }
            )
        )
        return
    head = {k: v for k, v in result.summary().items() if k != "by_category"}
    emit_object(head, output, title=f"Sprawl in the live fleet ({result.currency})")
    emit(_category_rows(result), output, title="Waste by category (each VM counted once)")
    cols = ["subject", "category", "monthly", "confidence", "evidence", "action"]
    top = sorted(result.findings, key=lambda f: -f.monthly_cost_held)[:20]
    emit([_finding_row(f) for f in top], output, cols, title="Top findings")
    signs = [
        {"sign": f"No.{s.number} {s.title}", "status": s.status.value, "figures": dict(s.figures)}
        for s in data.signs
    ]
    emit(
        signs, output, title="The five warning signs of sprawl (see --html for what each rests on)"
    )


def live_report(model: CostModelT, days: int = 30) -> SprawlAnalysis:
    """Run the analysis on the live inventory and the metrics store (empty store: no metrics)."""
    from corral.reports.sprawl import live_sprawl

    return live_sprawl(context.inventory(), context.metrics_store(), model, days=days)


def live_report_data(model: CostModelT, days: int = 30) -> ReportData:
    """The analysis plus chargeback, licences, waste over time and the five-signs scorecard."""
    from corral.reports.html import collect_report

    return collect_report(context.inventory(), context.metrics_store(), model, days=days)


@sprawl_app.command("detectors")
def detectors(output: OutputFormat = OutputOption) -> None:
    """Every detector with its parameters and defaults."""
    rows = [
        {
            "detector": name,
            "category": cls.category.value,
            "parameter": p.name,
            "default": p.default,
            "meaning": p.description,
        }
        for name, cls in DETECTORS.items()
        for p in (cls.params or ())
    ]
    rows += [
        {"detector": n, "category": c.category.value, "parameter": "", "default": "", "meaning": ""}
        for n, c in DETECTORS.items()
        if not c.params
    ]
    emit(rows, output, title="Sprawl detectors")


@cost_app.command("vm")
def cost_vm(
    inventory_file: Path = InventoryOption,
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Monthly cost of every VM, line by line."""
    model, inv = _model(cost_model), load_inventory(inventory_file)
    costs = price_fleet(inv.vms, inv.hosts, model)
    rows = [
        {"vm": vm.name, "state": vm.state.value, **_money(costs[vm.uuid].lines())} for vm in inv.vms
    ]
    emit(rows, output, title=f"Monthly cost per VM ({model.currency})")


@cost_app.command("chargeback")
def cost_chargeback(
    inventory_file: Path = InventoryOption,
    by: Dimension = typer.Option(Dimension.department, "--by", help="owner, department, project"),
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Showback/chargeback: monthly cost by owner, department or project."""
    model, inv = _model(cost_model), load_inventory(inventory_file)
    costs = price_fleet(inv.vms, inv.hosts, model)
    rows = [
        {by.value: r.key, "vms": r.vms, **_money(r.lines)} for r in chargeback(inv.vms, costs, by)
    ]
    emit(rows, output, title=f"Chargeback by {by.value} ({model.currency}/month)")


@cost_app.command("licences")
def cost_licences(
    inventory_file: Path = InventoryOption,
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Licence compliance (deployed vs owned) and the cheaper per-host/per-VM choice."""
    model, inv = _model(cost_model), load_inventory(inventory_file)
    report = licence_report(inv.vms, inv.hosts, model)
    usage = [
        {**asdict(u), "free": u.free, "monthly_cost": round(u.monthly_cost, 2)}
        for u in report.usage
    ]
    moves = [
        {**asdict(s), "monthly_saving": round(s.monthly_saving, 2)} for s in report.suggestions
    ]
    if output is OutputFormat.json:
        typer.echo(to_json({"usage": usage, "suggestions": moves}))
        return
    cols = ["product", "per", "covers", "deployed", "entitlements", "free", "status"]
    emit(usage, output, [*cols, "monthly_cost"], title="Licence compliance")
    if moves:
        emit(moves, output, title="Cheaper licensing")


def _model(path: Path | None) -> CostModelT:
    return context.cost_model(str(path) if path else None)


@cost_app.command("model")
def cost_model_text() -> None:
    """Print the default cost model (YAML with every default explained)."""
    typer.echo(default_cost_model_text(), nl=False)


def _emit_analysis(
    head: dict[str, Any], result: SprawlAnalysis, output: OutputFormat, title: str
) -> None:
    if output is OutputFormat.json:
        doc = {
            "summary": head,
            "findings": [asdict(f) for f in result.findings],
            "rightsizing": [asdict(r) for r in result.rightsizing],
            "insufficient_data": [asdict(i) for i in result.insufficient]
            + [asdict(i) for i in result.rightsizing_insufficient],
        }
        typer.echo(to_json(doc))
        return
    emit_object(head, output, title=title)


def _category_rows(result: SprawlAnalysis) -> list[dict[str, Any]]:
    return [
        {
            "category": t.category.value,
            "count": t.count,
            "monthly": round(t.monthly, 2),
            "yearly": round(12 * t.monthly, 2),
            "counted_as_waste": t.is_waste,
        }
        for t in result.totals
    ]


def _finding_row(f: Finding) -> dict[str, Any]:
    return {
        "subject": f.subject_name,
        "category": f.category.value,
        "monthly": round(f.monthly_cost_held, 2),
        "confidence": f.confidence,
        "also": [c.value for c in f.also_matched],
        "evidence": dict(f.evidence.measures),
        "action": f.suggested_action,
    }


def _money(lines: Any) -> dict[str, float]:
    return {k: round(float(v), 2) for k, v in dict(lines).items()}


def _now(inv: Inventory) -> datetime:
    return inv.now or datetime.now(UTC)


def _end(result: SprawlAnalysis) -> str:
    ends = [r.window_end[:10] for r in result.rightsizing]
    return max(ends) if ends else "?"
