"""``corral ha check``: HA admission control on a fleet file; ``corral ha simulate``: the
HA manager against a simulated fleet."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer

from corral.cli.fleet import FleetFileOption, LiveOption, fleet_snapshot
from corral.cli.output import OutputFormat, OutputOption, emit_object, to_json
from corral.errors import ValidationError
from corral.services import ha, ha_sim

ha_app = typer.Typer(
    help="High availability: admission control and failover plans.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(ha_app, name="ha")


def _as_of(raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"--as-of {raw!r} is not a date; write it as YYYY-MM-DD.") from None


@ha_app.command("check")
def check(
    fleet_file: Path | None = FleetFileOption,
    live: bool = LiveOption,
    policy: str = typer.Option(
        "exact", "--policy", "-p", help=f"One of: {', '.join(ha.policies())}."
    ),
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
    result = ha.check(
        fleet_snapshot(fleet_file, live).fleet,
        policy,
        failures,
        failover_hosts=failover_host,
        cpu_pct=cpu_pct,
        memory_pct=memory_pct,
        growth_per_month=growth_per_month,
        history=history,
        as_of=_as_of(as_of),
    )
    doc = _document(result)
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


def _document(result: ha.HACheckResult) -> dict[str, Any]:
    """The report's keys, then the growth projection's (the JSON contract of ``ha check``)."""
    doc = result.report.to_dict()
    if result.growth is not None:
        g = result.growth
        doc["growth_source"] = g.source.value
        doc["growth_per_month"] = round(g.growth_per_month, 4)
        doc["ha_guarantee_breaks_on"] = g.breaks_on.isoformat() if g.breaks_on else None
    return doc


@ha_app.command("simulate")
def simulate(
    scenario: Path = typer.Argument(..., help="Scenario file (YAML): fleet, behaviour, timeline."),
    output: OutputFormat = OutputOption,
    write_expected: bool = typer.Option(
        False, "--write-expected", help="Write the event log as the scenario's expectation (.log)."
    ),
) -> None:
    """Run the HA manager against a simulated fleet and print every event it produced."""
    if write_expected:
        typer.echo(f"wrote {ha_sim.write_expected(scenario)}")
        return
    result = ha_sim.run(scenario)
    if output is OutputFormat.json:
        typer.echo(to_json(result.to_dict()))
    else:
        typer.echo(result.log(), nl=False)
    if result.violations:
        raise typer.Exit(1)


@ha_app.command("run")
def run(
    once: bool = typer.Option(False, "--once", help="One round, then exit."),
    cycles: int | None = typer.Option(None, "--cycles", min=1, help="This many rounds, then exit."),
    name: str = typer.Option("default", "--name", help="Manager name (one per fleet)."),
) -> None:
    """The HA manager: watch every host, fence a failed one, restart its VMs by the plan.

    Run two instances against one PostgreSQL: one leads, the other stands by and takes
    over when the leader dies. On SQLite run only one.
    """
    from corral.cli import context
    from corral.reclaim.setup import mailer_from_env
    from corral.services.ha_live import HALiveService

    settings = context.settings()
    mailer = mailer_from_env(settings)
    service = HALiveService(context.inventory(), settings, name=name, mailer=mailer)
    service.run(1 if once else cycles)


@ha_app.command("status")
def status(
    name: str = typer.Option("default", "--name", help="Manager name."),
    output: OutputFormat = OutputOption,
) -> None:
    """Each host's and protected VM's HA state, the leader, and the latest events."""
    from corral.cli import context
    from corral.cli.output import emit
    from corral.services import ha_live_views

    result = ha_live_views.status(context.inventory().db, name)
    if output is OutputFormat.json:
        typer.echo(to_json(result.to_dict()))
        return
    leader = result.leader or "none yet"
    typer.echo(f"HA manager {result.manager}: leader {leader}, last round {result.updated_at}")
    emit([dict(vars(h)) for h in result.hosts], output, title="hosts")
    emit([dict(vars(v)) for v in result.vms], output, title="protected VMs")
    events = [{**vars(e), "t": _clock_time(e.t)} for e in result.events]
    emit(events, output, title="latest events")


def _clock_time(t: float) -> str:
    """A live manager's clock is the epoch: shown as a UTC time of day."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


@ha_app.command("plan")
def plan(
    name: str = typer.Option("default", "--name", help="Manager name."),
    output: OutputFormat = OutputOption,
) -> None:
    """The failover plan: for each host that could fail, where each of its VMs restarts."""
    from corral.cli import context
    from corral.cli.output import emit
    from corral.services import ha_live_views

    inventory = context.inventory()
    result = ha_live_views.plan(inventory.db, inventory, name)
    if output is OutputFormat.json:
        typer.echo(to_json(result.to_dict()))
        return
    if not result.entries:
        typer.echo("No failover plan: no synced host runs a protected VM (run 'corral sync').")
        return
    emit([dict(vars(e)) for e in result.entries], output, title=f"failover plan ({result.source})")


maintenance_app = typer.Typer(
    help="Maintenance mode: live-migrate a host's protected VMs off it, or clear the mark.",
    no_args_is_help=True,
)
ha_app.add_typer(maintenance_app, name="maintenance")


@maintenance_app.command("enter")
def maintenance_enter(
    host: str = typer.Argument(..., help="The host to empty."),
    name: str = typer.Option("default", "--name", help="Manager name."),
    output: OutputFormat = OutputOption,
) -> None:
    """Mark HOST in maintenance and live-migrate its running protected VMs by the plan.

    The HA manager then neither places VMs on it nor, once it is empty, fences it. A VM
    that cannot move stays running where it was, is reported, and the host stays
    'entering' (exit code 4).
    """
    from corral.cli import context
    from corral.cli.output import emit
    from corral.services.ha_maintenance import MaintenanceService

    service = MaintenanceService(
        context.inventory(), context.settings(), name=name, by=f"cli:{context.os_user()}"
    )
    report = service.enter(host)
    if output is OutputFormat.json:
        typer.echo(to_json(report.to_dict()))
    else:
        typer.echo(f"host {report.host}: {report.state}")
        if report.moves:
            emit([dict(vars(mv)) for mv in report.moves], output, title="VMs")
    if report.state != "in":
        raise typer.Exit(4)


@maintenance_app.command("abort")
def maintenance_abort(
    host: str = typer.Argument(..., help="The host whose evacuation to stop."),
    name: str = typer.Option("default", "--name", help="Manager name."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Ask, do not wait for the run."),
    output: OutputFormat = OutputOption,
) -> None:
    """Stop HOST's evacuation: no migration is begun any more, those in flight are
    cancelled (each VM keeps running on exactly one host) and HOST is back in service."""
    from corral.cli import context
    from corral.cli.output import emit
    from corral.services.ha_maintenance import MaintenanceService

    service = MaintenanceService(
        context.inventory(), context.settings(), name=name, by=f"cli:{context.os_user()}"
    )
    report = service.abort(host, wait=not no_wait)
    if output is OutputFormat.json:
        typer.echo(to_json(report.to_dict()))
        return
    typer.echo(f"host {report.host}: {report.state}")
    if report.moves:
        emit([dict(vars(mv)) for mv in report.moves], output, title="VMs moved before the abort")


@maintenance_app.command("exit")
def maintenance_exit(
    host: str = typer.Argument(..., help="The host to take out of maintenance."),
    name: str = typer.Option("default", "--name", help="Manager name."),
) -> None:
    """Clear HOST's maintenance mark: the manager checks it and may place VMs on it again."""
    from corral.cli import context
    from corral.services.ha_maintenance import MaintenanceService

    service = MaintenanceService(context.inventory(), context.settings(), name=name)
    typer.echo(f"host {service.exit(host).host}: out of maintenance")


@ha_app.command("encrypt-secret")
def encrypt_secret() -> None:
    """Read a fence-agent secret on stdin; print its {encrypted: TOKEN} for the HA policy."""
    import sys

    from corral.cli import context
    from corral.services.fence_secrets import seal

    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise ValidationError("Give the secret on stdin (one line).")
    typer.echo(f"{{encrypted: {seal(secret, context.settings())}}}")


ReportHTMLOption = typer.Option(
    None, "--report-html", help="Also write the drill's report to this file, as HTML."
)
ReportJSONOption = typer.Option(
    None, "--report-json", help="Also write the drill's report to this file, as JSON."
)


@ha_app.command("drill")
def drill(
    host: str = typer.Argument(..., help="The host to fail on purpose (drills.allow)."),
    name: str = typer.Option("default", "--name", help="Manager name."),
    output: OutputFormat = OutputOption,
    report_html: Path | None = ReportHTMLOption,
    report_json: Path | None = ReportJSONOption,
) -> None:
    """Fail HOST through its fence agent, let the running HA manager recover, report.

    The report: detection and fence time, each protected VM's time to running, planned
    and actual host, RTO met or missed, and what did not come back (exit code 4 then).
    """
    from corral.cli import context
    from corral.cli.output import emit
    from corral.services import ha_drill_report
    from corral.services.ha_drill import DrillService

    inventory = context.inventory()
    service = DrillService(inventory, context.settings(), name=name)
    report = service.run(host)
    if (report_html or report_json) and service.last_run_id is not None:
        view = ha_drill_report.drill_report(inventory.db, service.last_run_id, name)
        ha_drill_report.write(view, html=report_html, json_file=report_json)
    if output is OutputFormat.json:
        typer.echo(to_json(report.to_dict()))
    else:
        typer.echo(
            f"drill of {report.host}: detected after {report.detection_s} s, fenced after "
            f"{report.fence_s} s, ended by {report.ended_by}"
        )
        emit([dict(vars(v)) for v in report.vms], output, title="protected VMs")
        if report.not_recovered:
            typer.echo("not recovered: " + ", ".join(report.not_recovered))
        if report.unprotected:
            typer.echo("down by design (not protected): " + ", ".join(report.unprotected))
    if not report.all_met:
        raise typer.Exit(4)


@ha_app.command("drill-report")
def drill_report(
    run_id: int = typer.Argument(..., help="The drill run (see 'corral ha drills')."),
    name: str = typer.Option("default", "--name", help="Manager name."),
    report_html: Path | None = ReportHTMLOption,
    report_json: Path | None = ReportJSONOption,
) -> None:
    """A past drill's report: JSON on stdout, or written to --report-html / --report-json
    (a standalone page: planned and actual host per VM, times, what did not come back)."""
    from corral.cli import context
    from corral.services import ha_drill_report

    view = ha_drill_report.drill_report(context.inventory().db, run_id, name)
    if report_html is None and report_json is None:
        typer.echo(ha_drill_report.to_json(view))
        return
    ha_drill_report.write(view, html=report_html, json_file=report_json)


@ha_app.command("drills")
def drills(
    name: str = typer.Option("default", "--name", help="Manager name."),
    output: OutputFormat = OutputOption,
) -> None:
    """The drills run so far, manual and scheduled (drills.schedule in the HA policy: the
    leading 'corral ha run' starts them), newest first, with their outcome."""
    from corral.cli import context
    from corral.cli.output import emit
    from corral.services.ha_drill import drill_runs

    runs = [dict(vars(r)) for r in drill_runs(context.inventory(), name)]
    if output is OutputFormat.json:
        typer.echo(to_json(runs))
        return
    if not runs:
        typer.echo("No drill has run yet.")
        return
    emit(runs, output, title="drills")


@ha_app.command("heartbeat")
def heartbeat(
    host: str = typer.Argument(..., help="This host's name, as the inventory knows it."),
    directory: Path | None = typer.Option(
        None, "--dir", help="The heartbeat folder on shared storage (default: heartbeat_dir)."
    ),
    interval: float | None = typer.Option(
        None, "--interval", min=0.1, help="Seconds between beats (default: the check interval)."
    ),
    count: int | None = typer.Option(None, "--count", min=1, help="This many beats, then exit."),
) -> None:
    """Write HOST's storage heartbeat for the HA manager (run it on the host itself): a host
    whose daemon is silent while its heartbeat goes on is isolated, never fenced."""
    from corral.cli import context
    from corral.errors import ConfigError
    from corral.services.ha_heartbeat import HeartbeatWriter
    from corral.services.ha_live_policy import load_policy

    settings = context.settings()
    folder = directory or load_policy(settings).heartbeat_dir
    if folder is None:
        raise ConfigError("No heartbeat folder: set heartbeat_dir in the HA policy or give --dir.")
    every = interval or settings.ha_check_interval_s
    HeartbeatWriter(folder, host, every).run(count)
