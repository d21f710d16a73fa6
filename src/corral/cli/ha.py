"""``corral ha check``: HA admission control on a fleet file."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import typer

from corral.cli.output import OutputFormat, OutputOption, emit_object, to_json
from corral.cli.plan import FleetFileOption, LiveOption, read_fleet
from corral.engines.planning import POLICIES, ha_break_date, load_history, make_policy
from corral.engines.planning.forecast.history import growth_per_month as growth_from_history
from corral.errors import ValidationError

ha_app = typer.Typer(
    help="High availability: admission control and failover plans.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(ha_app, name="ha")


def _as_of(raw: str | None) -> date:
    if raw is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"--as-of {raw!r} is not a date; write it as YYYY-MM-DD.") from None


@ha_app.command("check")
def check(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    policy: str = typer.Option("exact", "--policy", "-p", help=f"One of: {', '.join(POLICIES)}."),
    failures: int = typer.Option(
        1, "--failures", "-k", min=0, help="Host failures to tolerate (K)."
    ),
    failover_host: list[str] = typer.Option(
        [], "--failover-host", help="Dedicated failover host (failover-hosts policy; repeat)."
    ),
    cpu_pct: float | None = typer.Option(None, help="Configured CPU failover % (percentage)."),
    memory_pct: float | None = typer.Option(
        None, help="Configured memory failover % (percentage)."
    ),
    growth_per_month: float | None = typer.Option(
        None, help="Demand growth per month (0.03 = 3 %): also report when HA breaks."
    ),
    as_of: str | None = typer.Option(None, help="Start date for the growth projection."),
    history: Path | None = typer.Option(
        None, "--history", help="Usage history CSV: its cluster trend gives the growth rate."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """How many host failures the fleet tolerates under a policy, and what would not come back."""
    fleet = read_fleet(fleet_file, live)
    params: dict[str, Any] = {}
    if policy == "percentage":
        params = {"cpu_pct": cpu_pct, "memory_pct": memory_pct}
    elif policy == "failover-hosts":
        params = {"hosts": failover_host or None}
    engine = make_policy(policy, **params)
    doc = engine.evaluate(fleet, failures).to_dict()
    source = "given"
    if growth_per_month is None and history is not None:
        growth_per_month, source = growth_from_history(load_history(history)), "history trend"
    if growth_per_month is not None:
        doc["growth_source"] = source
        start = _as_of(as_of)
        broken = ha_break_date(fleet, engine, failures, growth_per_month, start)
        doc["growth_per_month"] = round(growth_per_month, 4)
        doc["ha_guarantee_breaks_on"] = broken.isoformat() if broken else None
    if output is OutputFormat.json:
        typer.echo(to_json(doc))
        return
    flat = {
        k: v
        for k, v in doc.items()
        if not isinstance(v, list | dict) or k in ("slot", "slots_per_host")
    }
    emit_object(flat, output, title=f"HA check ({policy})")
    lost = doc.get("vms_not_coming_back")
    if lost:
        typer.echo("VMs that would not come back: " + ", ".join(lost))
