"""``corral forensic snapshot|list|show|verify|rollback|hold|release|expire``: thin commands over
corral.services.forensic. The local CLI acts as the administrator (docs/auth.md); its
snapshots and rollbacks are recorded in the audit log as the OS user's."""

from __future__ import annotations

from dataclasses import asdict

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, to_json
from corral.domain.forensic import Evidence
from corral.services.forensic import ForensicService

forensic_app = typer.Typer(
    help="Forensic snapshots (memory + disks, hashed, chain of custody) and rollbacks.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(forensic_app, name="forensic")


def _service() -> ForensicService:
    inventory = context.inventory()  # also names the OS user as the actor of the writes
    return ForensicService.from_settings(context.settings(), inventory.db)


def _row(e: Evidence) -> dict[str, object]:
    return {"id": e.id, "vm": e.vm_name, "host": e.host, "taken_by": e.taken_by,
            "taken_at": e.taken_at.isoformat(), "files": len(e.files), "bytes": e.size,
            "isolated_to": e.isolated_to or "", "reason": e.reason}  # fmt: skip


@forensic_app.command("snapshot")
def snapshot_cmd(
    vm: str = typer.Argument(..., help="The running VM (name or UUID)."),
    isolate: str | None = typer.Option(
        None, "--isolate", help="First move its NICs onto this (isolated) network of its host."
    ),
    reason: str = typer.Option("forensic snapshot by command", "--reason", help="Why."),
    output: OutputFormat = OutputOption,
) -> None:
    """Memory + disks of a running VM as read-only evidence with SHA-256 and custody record."""
    evidence = _service().snapshot(vm, by=context.os_user(), reason=reason, isolate=isolate)
    _show(evidence, output)


@forensic_app.command("list")
def list_cmd(
    vm: str | None = typer.Option(None, "--vm", help="Only this VM's evidence (name or UUID)."),
    output: OutputFormat = OutputOption,
) -> None:
    """The evidence sets, oldest first."""
    found = _service().evidence(vm)
    if output is OutputFormat.json:
        typer.echo(to_json([asdict(e) for e in found]))
    else:
        emit([_row(e) for e in found], output)


@forensic_app.command("show")
def show_cmd(evidence_id: str = typer.Argument(...), output: OutputFormat = OutputOption) -> None:
    """One evidence set: its custody record and every file with its SHA-256."""
    _show(_service().show(evidence_id), output)


@forensic_app.command("verify")
def verify_cmd(
    evidence_id: str | None = typer.Argument(None, help="One evidence set (default: all)."),
    output: OutputFormat = OutputOption,
) -> None:
    """Re-hash evidence against its custody record; exit 1 when anything changed."""
    checks = _service().verify(evidence_id)
    rows = [{"evidence": c.evidence, "ok": c.ok, "files": c.files,
             "problems": "; ".join(c.problems)} for c in checks]  # fmt: skip
    if output is OutputFormat.json:
        typer.echo(to_json(rows))
    else:
        emit(rows, output)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@forensic_app.command("rollback")
def rollback_cmd(
    vm: str = typer.Argument(..., help="The compromised VM (name or UUID)."),
    to: str = typer.Option(..., "--to", help="The known-good restore point's id."),
    reason: str = typer.Option("rollback of a compromised VM", "--reason", help="Why."),
    evidence: bool = typer.Option(
        True, "--evidence/--no-evidence", help="Snapshot the compromised state first."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Restore a compromised VM in place from a known-good restore point (evidence first)."""
    done = _service().rollback(vm, to, by=context.os_user(), reason=reason, evidence=evidence)
    if output is OutputFormat.json:
        typer.echo(to_json(asdict(done)))
    else:
        emit_object(asdict(done), output)


def _show(e: Evidence, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(to_json(asdict(e)))
        return
    emit_object(_row(e), output)
    emit([asdict(f) for f in e.files], output, ["name", "disk", "size", "sha256"])


@forensic_app.command("hold")
def hold_cmd(
    evidence_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why (the case, the order)."),
) -> None:
    """Put evidence on legal hold: no expiry deletes it until it is released."""
    _service().hold(evidence_id, by=context.os_user(), reason=reason)
    typer.echo(f"evidence {evidence_id} is on hold")


@forensic_app.command("release")
def release_cmd(
    evidence_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why the hold ends."),
) -> None:
    """End a legal hold; the next expiry run deletes the evidence once past its retention."""
    _service().release(evidence_id, by=context.os_user(), reason=reason)
    typer.echo(f"evidence {evidence_id} is no longer on hold")


@forensic_app.command("expire")
def expire_cmd(output: OutputFormat = OutputOption) -> None:
    """Delete evidence older than CORRAL_FORENSIC_RETENTION_DAYS, except what is on hold
    (run it daily, from cron); each deletion is a custody record in the audit log."""
    done = _service().expire(by=context.os_user())
    if output is OutputFormat.json:
        typer.echo(to_json(asdict(done)))
    else:
        emit_object({"retention_days": done.retention_days, "deleted": ", ".join(done.deleted),
                     "held": ", ".join(done.held)}, output)  # fmt: skip
