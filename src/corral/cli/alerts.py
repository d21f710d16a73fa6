"""``corral alerts``: the alert rules, the alerts and their life cycle, from a shell.

``evaluate`` runs the rules once on the metrics store and then sends what the outbox holds
(a timer or the server runs it every minute); the other commands read and change the states.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit
from corral.errors import ValidationError
from corral.services import alerts_cli as svc

alerts_app = typer.Typer(
    help="Alert rules, alerts, acknowledgements and silences.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")


def _time(t: float | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S") if t else ""


@alerts_app.command("rules")
def rules(output: OutputFormat = OutputOption) -> None:
    """The rules in force (the rules file, else the shipped example) and the channels."""
    view = svc.rules_view(context.settings())
    emit(view.rules, output, ["name", "kind", "for_s", "severity", "params"], title=view.title)
    if output is OutputFormat.table:
        typer.echo(f"channels: {', '.join(view.channels) or 'none'}")


@alerts_app.command("evaluate")
def evaluate(
    inhibit: list[str] = typer.Option(
        [], "--inhibit", help="LABEL=VALUE:REASON, e.g. host=kvm-03:maintenance (repeatable)."
    ),
    deliver: bool = typer.Option(True, "--deliver/--no-deliver", help="Send what is due."),
    store: str | None = typer.Option(
        None, "--store", help="Metrics store URL (default: settings)."
    ),
) -> None:
    """Evaluate every rule once on the metrics store, then send the notifications due."""
    settings, inventory = context.settings(), context.inventory()
    service = svc.service(settings, inventory.db)
    report = service.evaluate_store(
        context.metrics_store(store),
        None,
        svc.inhibitions(inhibit),
        svc.facts(settings, inventory),
    )
    typer.echo(
        f"{report.conditions} condition(s), {report.changed} alert(s) changed, "
        f"{report.notifications} notification(s), {report.queued} queued"
    )
    if deliver:
        sent = service.deliver()
        failed = [d for d in sent if not d.sent]
        typer.echo(f"sent {len(sent) - len(failed)}, failed {len(failed)}")
        for d in failed:
            typer.echo(f"  {d.channel}: {d.error} (attempt {d.attempts}; retried later)")


@alerts_app.command("run")
def run(
    interval: float | None = typer.Option(
        None, "--interval", min=0.1, help="Seconds between rounds (default: alert_interval_s)."
    ),
    cycles: int | None = typer.Option(None, "--cycles", min=1, help="This many rounds, then exit."),
    store: str | None = typer.Option(
        None, "--store", help="Metrics store URL (default: settings)."
    ),
) -> None:
    """Evaluate the rules and send what is due, round after round, until interrupted.

    Start it on several machines against one PostgreSQL: one evaluates, the others stand by
    and take over when it stops. On SQLite the same holds on one machine (a file lock).
    """
    settings, inventory = context.settings(), context.inventory()
    loop = svc.loop(settings, inventory, context.metrics_store(store), interval)
    typer.echo(f"alert loop: a round every {loop.interval_s:g} s")
    try:
        loop.run(cycles, on_round=lambda r: typer.echo(f"{_time(time.time())} {r.describe()}"))
    except KeyboardInterrupt:
        typer.echo("alert loop stopped")


@alerts_app.command("list")
def list_alerts(
    state: svc.AlertState | None = typer.Option(None, "--state", help="Only this state."),
    output: OutputFormat = OutputOption,
) -> None:
    """Alerts, newest change first."""
    rows: list[dict[str, Any]] = [
        {
            "id": a.fingerprint,
            "state": a.state,
            "rule": a.rule,
            "severity": a.severity,
            "host": a.label("host") or "",
            "entity": a.label("entity") or "",
            "summary": a.summary,
            "since": _time(a.changed_at),
            "acked_by": a.acked_by or "",
            "muted_by": a.muted_by or "",
        }
        for a in svc.service(context.settings(), context.inventory().db).alerts(state)
    ]
    cols = ["id", "state", "rule", "severity", "host", "entity", "summary", "since", "acked_by"]
    emit(rows, output, cols, title=f"Alerts ({len(rows)})")


@alerts_app.command("ack")
def ack(
    alert_id: str = typer.Argument(..., help="The alert's id (from 'corral alerts list')."),
) -> None:
    """Acknowledge a firing alert: it stays acknowledged until it resolves."""
    alert = svc.service(context.settings(), context.inventory().db).acknowledge(
        alert_id, context.os_user()
    )
    typer.echo(f"alert {alert.fingerprint} ({alert.rule}) acknowledged by {alert.acked_by}")


@alerts_app.command("silence")
def silence(
    matchers: list[str] = typer.Argument(..., help="LABEL=VALUE the alerts must all carry."),
    duration: str = typer.Option("2h", "--for", help="How long: 30m, 2h, 3d."),
    comment: str = typer.Option("", "--comment", help="Why (shown with the silence)."),
) -> None:
    """Mute notifications of matching alerts until the silence ends (its end is notified)."""
    service = svc.service(context.settings(), context.inventory().db)
    try:
        ends_at = service.clock() + svc.seconds(duration)
    except ValueError as exc:
        raise ValidationError(f"--for: {exc}.") from None
    made = service.silence(svc.matchers(matchers), ends_at, comment, context.os_user())
    typer.echo(f"silence {made.id} until {_time(made.ends_at)} UTC")


@alerts_app.command("silences")
def silences(output: OutputFormat = OutputOption) -> None:
    """Silences, the soonest to end first."""
    rows = [
        {
            "id": s.id,
            "matchers": ",".join(f"{k}={v}" for k, v in s.matchers),
            "ends": _time(s.ends_at),
            "by": s.created_by,
            "comment": s.comment,
            "expiry_told": s.expiry_noticed,
        }
        for s in svc.service(context.settings(), context.inventory().db).silences()
    ]
    emit(rows, output, ["id", "matchers", "ends", "by", "comment", "expiry_told"], title="Silences")
