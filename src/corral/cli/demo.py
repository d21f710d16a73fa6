"""``corral demo``: build the seeded demo fleet on the embedded default, summarise it, serve it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, to_json
from corral.demo.run import build_demo, summary


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Serve the API afterwards (default) or exit."
    ),
    vms: int = typer.Option(150, min=10, max=20000, help="How many VMs."),
    hosts: int = typer.Option(6, min=1, max=200, help="How many hosts."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same fleet."),
    folder: Path | None = typer.Option(
        None, help="Where the node files go (default: $CORRAL_HOME/demo)."
    ),
    port: int = typer.Option(8080, help="API port when serving."),
    bind: str = typer.Option("127.0.0.1", help="API address when serving."),
    output: OutputFormat = OutputOption,
) -> None:
    """Build a demo fleet of libvirt test-driver hosts, sync its history, summarise, serve."""
    inv = context.inventory()
    folder = folder or context.settings().demo_dir
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("building the demo fleet's history", total=None)
        result = build_demo(
            inv,
            folder,
            seed=seed,
            n_vms=vms,
            n_hosts=hosts,
            progress=lambda n, total: bar.update(task, completed=n, total=total),
        )
    info = summary(inv, [h.name for h in result.fleet.hosts])
    if output is OutputFormat.json:
        typer.echo(to_json(info))
    else:
        typer.echo(f"Demo fleet: {len(result.fleet.hosts)} test-driver hosts in {result.folder}")
        emit(info["hosts"], output, title="hosts")
        emit_object(info["fleet"], output, title="fleet")
        emit_object(info["events"], output, title="recorded events")
    if serve:
        from corral.cli.serve import run_server

        token = context.tokens().create_or_rotate("demo")
        typer.echo(f"Write token for this demo (shown once): {token}")
        run_server(bind, port)
