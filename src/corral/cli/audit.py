"""The audit log: list it, and verify its hash chain."""

from __future__ import annotations

from datetime import datetime

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit
from corral.errors import ValidationError

audit_app = typer.Typer(help="The audit log of every write: list, verify.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def _time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name} {text!r} is not an ISO 8601 time.") from None
    if moment.tzinfo is None:
        raise ValidationError(f"{name} {text!r} has no time zone; add Z or +00:00.")
    return moment


@audit_app.command("list")
def list_entries(
    user: str | None = typer.Option(None, "--user", help="Only this actor's writes."),
    target: str | None = typer.Option(
        None, "--target", help="e.g. vm:<uuid>, user:alice; a prefix ending in ':' (vm:) too."
    ),
    since: str | None = typer.Option(None, "--since", help="ISO 8601 time, inclusive."),
    until: str | None = typer.Option(None, "--until", help="ISO 8601 time, exclusive."),
    limit: int = typer.Option(100, "--limit", min=1, max=10000),
    output: OutputFormat = OutputOption,
) -> None:
    """Entries oldest first."""
    rows = context.audit_log().list(
        user=user,
        target=target,
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        limit=limit,
    )
    emit(
        [
            {
                "seq": r.seq,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "roles": r.roles,
                "origin": r.origin,
                "action": r.action,
                "target": r.target,
                "before": r.before,
                "after": r.after,
            }
            for r in rows
        ],
        output,
        ["seq", "at", "actor", "roles", "origin", "action", "target", "before", "after"],
    )


@audit_app.command("verify")
def verify() -> None:
    """Exit 0 when the chain is intact; else 6, naming the first bad entry."""
    verdict = context.audit_log().verify()
    if verdict.intact:
        typer.echo(f"audit log intact: {verdict.entries} entries")
        return
    typer.echo(
        f"audit log broken at entry {verdict.first_bad}: {verdict.reason} "
        f"({verdict.entries} entries before it are intact)",
        err=True,
    )
    raise typer.Exit(6)
