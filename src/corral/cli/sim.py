"""``corral sim``: the trace-driven consolidation simulator (PlanetLab, CloudSim set-up).

Thin commands: load a day of traces, run a policy in the pure engine, print the metrics of
Beloglazov & Buyya (2012) beside the day's physical lower bound on energy.
"""

from __future__ import annotations

from pathlib import Path

import typer

from corral.cli.output import OutputFormat, OutputOption, emit, emit_object
from corral.engines.simulation import (
    describe_policies,
    make_policy,
    planetlab_fleet,
    planetlab_vm_types,
    simulate,
)
from corral.engines.simulation.planetlab import list_days, load_day
from corral.errors import ValidationError

sim_app = typer.Typer(
    help="Simulate dynamic VM consolidation on recorded traces (CloudSim PlanetLab set-up).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(sim_app, name="sim")


def parse_overrides(pairs: list[str]) -> dict[str, float]:
    """``name=value`` pairs from ``--set``."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError(pair)
            out[name.strip()] = float(value)
        except ValueError as exc:
            raise ValidationError(f"--set expects name=number, got {pair!r}.") from exc
    return out


@sim_app.command("consolidate")
def consolidate(
    planetlab_dir: Path = typer.Option(
        ..., "--planetlab-dir", help="Folder of PlanetLab day folders (or one day folder)."
    ),
    policy: str = typer.Option(..., "--policy", help="e.g. lr-mmt-1.2, thr-mmt-0.8, corral"),
    day: str | None = typer.Option(
        None, "--day", help="Day folder, e.g. 20110303 (default: first)."
    ),
    order_file: Path | None = typer.Option(
        None,
        "--order-file",
        help="File order CloudSim read the traces in (published-results/cloudsim-vm-order/"
        "<day>.txt); sorted names if absent.",
    ),
    hosts: int = typer.Option(800, "--hosts", min=1, help="Hosts (half G4, half G5)."),
    overrides: list[str] = typer.Option([], "--set", help="Policy parameter, name=value."),
    output: OutputFormat = OutputOption,
) -> None:
    """Run one policy over one day and print energy, migrations, SLATAH, PDM, SLAV, ESV."""
    chosen = make_policy(policy, parse_overrides(overrides))
    workload = load_day(planetlab_dir, day, order_file)
    result = simulate(planetlab_fleet(hosts), planetlab_vm_types(), workload, chosen)
    emit_object(result.as_dict(), output, title=f"{chosen.name} on {workload.day}")


@sim_app.command("policies")
def policies(output: OutputFormat = OutputOption) -> None:
    """List the consolidation policies with their parameters and defaults."""
    rows = describe_policies()
    emit(rows, output, ["policy", "parameters", "summary"], title="Consolidation policies")


@sim_app.command("days")
def days(
    planetlab_dir: Path = typer.Option(..., "--planetlab-dir", help="Folder of day folders."),
    output: OutputFormat = OutputOption,
) -> None:
    """List the trace days available in a PlanetLab folder."""
    emit([{"day": d} for d in list_days(planetlab_dir)], output, ["day"], title="Days")
