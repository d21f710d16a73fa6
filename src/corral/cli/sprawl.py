"""``corral sprawl`` (detectors, Bitbrains run, seed scenario) and ``corral cost`` (prices).

Thin commands: parse options, call corral.services.sprawl / corral.services.cost
with the settings' cost model, render. Money figures are in the cost model's
currency, per month unless a column says yearly.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from corral.cli import context
from corral.cli.fleet import FleetFileOption, LiveOption, fleet_snapshot
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, to_json
from corral.services import cost as cost_service
from corral.services import sprawl as sprawl_service
from corral.services.backup import load_policy
from corral.services.cost import CostModel, Dimension, default_cost_model_text
from corral.services.policy import configured_policy
from corral.services.records import FleetRecords
from corral.services.sprawl import (
    CategoryTotal,
    Finding,
    RightSizeMode,
    RightSizingParams,
    SprawlAnalysis,
    SprawlSummary,
)

sprawl_app = typer.Typer(
    help="Sprawl: idle, powered-off, orphaned, expired VMs and right-sizing.", no_args_is_help=True
)
cost_app = typer.Typer(
    help="Cost model: monthly cost per VM, chargeback, licences.", no_args_is_help=True
)

CostModelOption = typer.Option(
    None,
    "--cost-model",
    help="Cost model YAML (default: the settings' CORRAL_COST_MODEL, else "
    "the shipped, documented defaults).",
)
InventoryOption = typer.Option(
    None, "--inventory-file", "-i", hidden=True, help="Deprecated: the same as --fleet-file."
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
    result = sprawl_service.bitbrains(
        data_dir,
        _model(cost_model),
        month=month,
        limit=limit,
        assumed_disk_gb=assumed_disk_gb,
        rightsizing=RightSizingParams(mode=mode, headroom=headroom),
    )
    head: dict[str, Any] = asdict(result.summary)
    head["assumed_disk_gb_per_vm"] = assumed_disk_gb
    head["window"] = f"{result.window_start:%Y-%m-%d} .. {_end(result.analysis)}"
    a = result.analysis
    if output is OutputFormat.json:
        doc = {
            "summary": head,
            "findings": [asdict(f) for f in a.findings],
            "rightsizing": [asdict(r) for r in a.rightsizing],
            "insufficient_data": [asdict(i) for i in a.insufficient]
            + [asdict(i) for i in a.rightsizing_insufficient],
        }
        typer.echo(to_json(doc))
        return
    emit_object(head, output, title=f"Bitbrains Rnd {month}: sprawl under the cost model")


@sprawl_app.command("scenario")
def scenario(
    vms: int = typer.Option(150, "--vms", min=1, max=1000, help="Fleet size (at most 1,000)."),
    seed: int = typer.Option(1, "--seed", help="Random seed of the fleet."),
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """The seed's figure: sprawl waste of a fleet with stated, sourced sprawl rates."""
    result = sprawl_service.scenario(_model(cost_model), vms, seed)
    head = {**_summary_head(result.summary), "seed": seed}
    rows = [
        {"assumption": a.name, "value": a.value, "source": a.source} for a in result.assumptions
    ]
    categories = _category_rows(result.summary.categories)
    if output is OutputFormat.json:
        doc = {"summary": head, "by_category": categories, "assumptions": rows}
        typer.echo(to_json(doc))
        return
    emit_object(head, output, title=f"Sprawl scenario: {vms} VMs, seed {seed}")
    emit(categories, output, title="Waste by category (each VM counted once)")
    emit(rows, output, title="Assumptions")


@sprawl_app.command("findings")
def findings(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    inventory_file: Path | None = InventoryOption,
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Inventory-based findings (powered off, orphaned, snapshots, owner, purpose, lease)."""
    model = _model(cost_model)
    result = sprawl_service.inventory_findings(_fleet(fleet_file or inventory_file, live), model)
    rows = [_finding_row(f) for f in result.findings]
    rows += [
        {"subject": i.subject_name, "category": f"insufficient:{i.detector}", "evidence": i.reason}
        for i in result.insufficient
    ]
    cols = ["subject", "category", "monthly", "confidence", "also", "evidence", "action"]
    emit(rows, output, cols, title=f"Sprawl findings ({result.currency}/month)")


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
    data = sprawl_service.sprawl_report(
        context.inventory(),
        context.metrics_store(),
        _model(cost_model),
        days=days,
        backup_policy=load_policy(context.settings()),
        run=sprawl_service.AnalysisRun.of(context.settings()),
        governance=configured_policy(context.settings().governance_policy),
    )
    result = data.analysis
    summary = SprawlSummary.of(result)
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
    emit_object(
        _summary_head(summary), output, title=f"Sprawl in the live fleet ({result.currency})"
    )
    emit(
        _category_rows(summary.categories), output, title="Waste by category (each VM counted once)"
    )
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


@sprawl_app.command("detectors")
def detectors(output: OutputFormat = OutputOption) -> None:
    """Every detector with its parameters and defaults."""
    rows = [
        {
            "detector": d.detector,
            "category": d.category.value,
            "parameter": d.parameter or "",
            "default": "" if d.default is None else d.default,
            "meaning": d.meaning,
        }
        for d in sprawl_service.detector_catalogue()
    ]
    emit(rows, output, title="Sprawl detectors")


@cost_app.command("vm")
def cost_vm(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    inventory_file: Path | None = InventoryOption,
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Monthly cost of every VM, line by line."""
    result = cost_service.cost_per_vm(
        _fleet(fleet_file or inventory_file, live), _model(cost_model)
    )
    rows = [{"vm": v.vm, "state": v.state.value, **_money(v.lines)} for v in result.vms]
    emit(rows, output, title=f"Monthly cost per VM ({result.currency})")


@cost_app.command("chargeback")
def cost_chargeback(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    inventory_file: Path | None = InventoryOption,
    by: Dimension = typer.Option(Dimension.department, "--by", help="owner, department, project"),
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Showback/chargeback: monthly cost by owner, department or project."""
    result = cost_service.chargeback_by(
        _fleet(fleet_file or inventory_file, live), _model(cost_model), by
    )
    rows = [{by.value: r.key, "vms": r.vms, **_money(r.lines)} for r in result.rows]
    emit(rows, output, title=f"Chargeback by {by.value} ({result.currency}/month)")


@cost_app.command("licences")
def cost_licences(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    inventory_file: Path | None = InventoryOption,
    cost_model: Path | None = CostModelOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Licence compliance (deployed vs owned) and the cheaper per-host/per-VM choice."""
    result = cost_service.licence_compliance(
        _fleet(fleet_file or inventory_file, live), _model(cost_model)
    )
    usage = [
        {**asdict(u), "free": u.free, "monthly_cost": round(u.monthly_cost, 2)}
        for u in result.usage
    ]
    moves = [
        {**asdict(s), "monthly_saving": round(s.monthly_saving, 2)} for s in result.suggestions
    ]
    if output is OutputFormat.json:
        typer.echo(to_json({"usage": usage, "suggestions": moves}))
        return
    cols = ["product", "per", "covers", "deployed", "entitlements", "free", "status"]
    emit(usage, output, [*cols, "monthly_cost"], title="Licence compliance")
    if moves:
        emit(moves, output, title="Cheaper licensing")


@cost_app.command("model")
def cost_model_text() -> None:
    """Print the default cost model (YAML with every default explained)."""
    typer.echo(default_cost_model_text(), nl=False)


def _model(path: Path | None) -> CostModel:
    return context.cost_model(str(path) if path else None)


def _fleet(fleet_file: Path | None, live: bool) -> FleetRecords:
    """The cost/sprawl records of ``--fleet-file`` (or old ``--inventory-file``) or ``--live``."""
    return fleet_snapshot(fleet_file, live).records


def _summary_head(summary: SprawlSummary) -> dict[str, Any]:
    return {k: v for k, v in asdict(summary).items() if k != "categories"}


def _category_rows(totals: tuple[CategoryTotal, ...]) -> list[dict[str, Any]]:
    return [
        {
            "category": t.category.value,
            "count": t.count,
            "monthly": round(t.monthly, 2),
            "yearly": round(12 * t.monthly, 2),
            "counted_as_waste": t.is_waste,
        }
        for t in totals
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


def _money(lines: cost_service.CostLines) -> dict[str, float]:
    return {k: round(float(v), 2) for k, v in asdict(lines).items()}


def _end(result: SprawlAnalysis) -> str:
    ends = [r.window_end[:10] for r in result.rightsizing]
    return max(ends) if ends else "?"
