"""``corral sim``: the trace-driven consolidation simulator (PlanetLab, CloudSim set-up).

Thin commands: load a day of traces, run a policy in the pure engine, print the metrics of
Beloglazov & Buyya (2012) beside the day's physical lower bound on energy.
"""

from __future__ import annotations

from pathlib import Path

import typer

from corral.cli.output import OutputFormat, OutputOption, emit, emit_object
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
    from corral.services import simulation

    result = simulation.run(
        planetlab_dir,
        policy,
        day=day,
        order_file=order_file,
        hosts=hosts,
        overrides=parse_overrides(overrides),
    )
    emit_object(result.as_dict(), output, title=f"{result.policy} on {result.day}")


@sim_app.command("policies")
def policies(output: OutputFormat = OutputOption) -> None:
    """List the consolidation policies with their parameters and defaults."""
    from corral.services import simulation

    rows = [
        {
            "policy": p.family,
            "summary": p.summary,
            "parameters": {q.name: q.default for q in p.parameters},
            "parameter_help": {q.name: q.description for q in p.parameters},
        }
        for p in simulation.policies()
    ]
    emit(rows, output, ["policy", "parameters", "summary"], title="Consolidation policies")


@sim_app.command("days")
def days(
    planetlab_dir: Path = typer.Option(..., "--planetlab-dir", help="Folder of day folders."),
    output: OutputFormat = OutputOption,
) -> None:
    """List the trace days available in a PlanetLab folder."""
    from corral.services import simulation

    emit([{"day": d} for d in simulation.days(planetlab_dir)], output, ["day"], title="Days")
