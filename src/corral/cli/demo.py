"""``corral demo``: build the seeded demo fleet on the embedded default, summarise it, serve it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, to_json
from corral.demo.metrics import (
    backfill_history,
    default_trace_dir,
    fleet_shape,
    record_host_history,
    running_vms,
    start_live,
)
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
    traces: Path | None = typer.Option(
        None, help="Bitbrains or PlanetLab traces for the VMs' history (default: ../shared/data)."
    ),
    history_days: float = typer.Option(30.0, min=0, help="Days of metrics history (0: none)."),
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
    names = [h.name for h in result.fleet.hosts]
    info = summary(inv, names)
    trace_dir = traces or default_trace_dir(context.settings().shared_data)
    vms_running = running_vms(inv, names)
    store = None
    shape = fleet_shape(inv, result.fleet)
    now = time.time()
    if history_days > 0 and trace_dir is not None:
        store = context.metrics_store()
        done = backfill_history(store, vms_running, trace_dir, history_days, seed, end=now)
        hosts_done = record_host_history(store, vms_running, shape, trace_dir, seed, end=now)
        info["metrics"] = {
            "traces": str(trace_dir),
            "vms": done.vms,
            "days": history_days,
            "samples": done.samples,
            "seconds": round(done.seconds, 1),
            "hosts": hosts_done.hosts,
            "host_days": hosts_done.days,
            "host_samples": hosts_done.samples,
        }
    elif history_days > 0:
        info["metrics"] = {"skipped": "no trace folder found; pass --traces DIR"}
    from corral.reports.html import write_html
    from corral.services.backup import load_policy
    from corral.services.sprawl import sprawl_report

    days = max(1, int(history_days) or 30)
    policy = load_policy(context.settings())
    from corral.services.policy import configured_policy

    report = sprawl_report(
        inv,
        context.metrics_store(),
        context.cost_model(),
        days=days,
        backup_policy=policy,
        governance=configured_policy(context.settings().governance_policy),
    )
    sprawl = report.analysis.summary()
    info["sprawl"] = sprawl
    from corral.demo.reclaim import demo_reclamation
    from corral.reports.collect import reclamation_cases

    info["reclamation"] = demo_reclamation(inv, context.settings(), report.analysis)
    report = dataclasses.replace(report, reclamation=reclamation_cases(inv, inv.clock()))
    info["html_report"] = str(write_html(context.settings().home / "sprawl-report.html", report))
    if store is not None:
        from corral.services.alert_demo import demo_alerts

        raised = demo_alerts(inv, context.settings(), store)
        info["alerts"] = [dataclasses.asdict(a) for a in raised]
    info["self_service"] = _walk_a_request(inv, result)
    if output is OutputFormat.json:
        typer.echo(to_json(info))
    else:
        typer.echo(f"Demo fleet: {len(result.fleet.hosts)} test-driver hosts in {result.folder}")
        emit(info["hosts"], output, title="hosts")
        emit_object(info["fleet"], output, title="fleet")
        emit_object(info["events"], output, title="recorded events")
        emit_object(info.get("metrics", {"skipped": "--history-days 0"}), output, title="metrics")
        head = {k: v for k, v in sprawl.items() if k != "by_category"}
        emit_object(head, output, title="sprawl, priced by the default cost model")
        rows = [{"category": k, **v} for k, v in sprawl["by_category"].items()]
        emit(rows, output, title="waste by category (each VM counted once; 'corral sprawl report')")
        typer.echo(f"Sprawl report with charts and the five warning signs: {info['html_report']}")
        _print_reclamation(info["reclamation"], output)
        _print_alerts(info.get("alerts"), output)
        emit_object(info["self_service"], output, title="self-service: a request walked to a VM")
    if serve:
        from corral.cli.serve import run_server

        if store is not None and trace_dir is not None:
            start_live(store, vms_running, shape, trace_dir, seed)
        token = context.tokens().create_or_rotate("demo")
        typer.echo(f"Write token for this demo (shown once): {token}")
        typer.echo(
            f"Dashboard: http://{bind}:{port}/  (sign in with the token above, an "
            "administrator's, or as one of the users below with their password)"
        )
        _print_logins(output)
        run_server(bind, port)


def _busiest_department() -> str:
    from collections import Counter

    from corral.inventory.filters import VMFilter

    vms = context.inventory().list_vms(VMFilter(), limit=1000).items
    busiest = Counter(v.department for v in vms if v.department).most_common(1)
    return str(busiest[0][0]) if busiest else "demo"


def _walk_a_request(inv: Any, result: Any) -> dict[str, Any]:
    """A request by the busiest department's requester, decided and made into its VM."""
    from corral.demo.selfservice import walk_a_request

    host = result.fleet.hosts[0].name
    node_file = result.folder / f"{host}.xml"
    return walk_a_request(inv, context.settings(), host, node_file, _busiest_department())


def _print_logins(output: OutputFormat) -> None:
    """One user per role in the busiest department, with a token each (shown once)."""
    from corral.services.users import one_user_per_role

    department = _busiest_department()
    logins = one_user_per_role(context.users(), context.tokens(), department)
    emit(
        [dataclasses.asdict(x) for x in logins],
        output,
        title="logins, one per role (passwords and tokens shown once; see docs/auth.md)",
    )


def _print_alerts(alerts: list[dict[str, Any]] | None, output: OutputFormat) -> None:
    if alerts is None:
        return
    if not alerts:
        typer.echo("alerts: the replayed history raises none right now ('corral alerts list').")
        return
    cols = ["rule", "severity", "host", "entity", "summary"]
    emit(alerts, output, cols, title="alerts the replayed history raises ('corral alerts list')")


def _print_reclamation(rec: dict[str, Any], output: OutputFormat) -> None:
    emit(
        rec["walkthrough"],
        output,
        title="reclamation: one VM through every step and back, one to deletion "
        "(real libvirt actions; no waiting periods in the demo)",
    )
    typer.echo(
        f"{rec['flagged']} more VMs flagged from the sprawl findings "
        f"({rec['held_monthly']:,.2f} {rec['currency']} a month), {rec['notified']} owners "
        f"e-mailed ({rec['mail']}); 'corral reclaim list', 'corral reclaim run'."
    )
