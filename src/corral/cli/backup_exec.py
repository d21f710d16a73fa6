"""``corral backup run|points|verify|gc|hold|release|restore-test|restore-tests`` and
``corral restore``:
thin commands over corral.services.backup_exec, backup_restore_test and restore."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, to_json
from corral.services import backup as backup_service
from corral.services import backup_exec, backup_holds
from corral.services.backup_loop import BackupLoop, BackupRound
from corral.services.backup_restore_test import RestoreTester, RestoreTestResult
from corral.services.backup_restore_test import history as restore_history
from corral.services.restore import Restorer


def add_commands(backup_app: typer.Typer) -> None:
    """The executor's commands under ``corral backup``."""
    backup_app.command("run")(run_cmd)
    backup_app.command("points")(points_cmd)
    backup_app.command("verify")(verify_cmd)
    backup_app.command("gc")(gc_cmd)
    backup_app.command("hold")(hold_cmd)
    backup_app.command("release")(release_cmd)
    backup_app.command("restore-test")(restore_test_cmd)
    backup_app.command("restore-tests")(restore_tests_cmd)


def register(app: typer.Typer) -> None:
    app.command("restore")(restore_cmd)


def run_cmd(
    vm: str | None = typer.Option(None, "--vm", help="Back up this VM now (due or not)."),
    every: float | None = typer.Option(
        None, "--every", min=10.0,
        help="Keep running: every this many seconds take the due backups, then expire the "
        "restore points and forensic evidence past their retention (never one on hold), then "
        "run the due restore tests (CORRAL_BACKUP_LOOP_RESTORE_TESTS a round).",
    ),
    output: OutputFormat = OutputOption,
) -> None:  # fmt: skip
    """Take the due backups (full, then incrementals through checkpoints) into the repository.

    With --every: never exits by itself; one line per round (--output json: one JSON line)."""
    settings = context.settings()
    policy = backup_service.load_policy(settings)
    db = context.inventory().db
    if every is not None:
        loop = BackupLoop.from_settings(settings, db, policy, every, context.os_user())
        loop.run(on_round=lambda r: _emit_round(r, output))
        return
    report = backup_exec.Executor.from_settings(settings, db, policy).run(vm)
    rows = [asdict(o) for o in report.outcomes]
    if output is OutputFormat.json:
        typer.echo(to_json(rows))
    else:
        emit([{**r, "redone": "; ".join(r["redone"])} for r in rows], output)
    if report.failed:
        raise typer.Exit(1)


def _emit_round(done: BackupRound, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(to_json(asdict(done), line=True))
    else:
        typer.echo(done.describe())


def hold_cmd(
    point: str = typer.Argument(..., help="The restore point's id."),
    reason: str = typer.Option(..., "--reason", help="Why (the case, the order)."),
) -> None:
    """Put a restore point on legal hold: no retention run deletes it (nor the parents it
    needs) until it is released."""
    settings = context.settings()
    repo = backup_exec.repository(settings)
    backup_holds.hold(context.inventory().db, repo, point, by=context.os_user(), reason=reason)
    typer.echo(f"restore point {point} is on hold")


def release_cmd(
    point: str = typer.Argument(..., help="The restore point's id."),
    reason: str = typer.Option(..., "--reason", help="Why the hold ends."),
) -> None:
    """End a restore point's legal hold; the next retention run may delete it."""
    settings = context.settings()
    repo = backup_exec.repository(settings)
    backup_holds.release(context.inventory().db, repo, point, by=context.os_user(), reason=reason)
    typer.echo(f"restore point {point} is no longer on hold")


def points_cmd(
    vm: str | None = typer.Option(None, "--vm", help="Only this VM's points (name or UUID)."),
    output: OutputFormat = OutputOption,
) -> None:
    """The restore points in the repository, oldest first."""
    repo = backup_exec.repository(context.settings())
    rows = [
        {"id": p.id, "vm": p.vm_name, "host": p.host, "kind": p.kind, "parent": p.parent,
         "taken_at": p.taken_at.isoformat(), "bytes": p.size, "fallback": p.fallback}
        for p in repo.points()
        if vm is None or vm in (p.vm_name, p.vm_uuid)
    ]  # fmt: skip
    if output is OutputFormat.json:
        typer.echo(to_json(rows))
    else:
        emit(rows, output)


def verify_cmd(
    point: str | None = typer.Option(None, "--point", help="Only this restore point."),
    output: OutputFormat = OutputOption,
) -> None:
    """Re-hash restore points against their manifests; exit 1 when one is damaged."""
    repo = backup_exec.repository(context.settings())
    results = backup_exec.verify(context.inventory().db, repo, point)
    rows = [{"point": r.point, "ok": r.ok, "problems": "; ".join(r.problems)} for r in results]
    if output is OutputFormat.json:
        typer.echo(to_json(rows))
    else:
        emit(rows, output)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def gc_cmd(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; delete nothing."),
    output: OutputFormat = OutputOption,
) -> None:
    """Delete the restore points retention no longer keeps (never a retained point's parent)."""
    settings = context.settings()
    repo, policy = backup_exec.repository(settings), backup_service.load_policy(settings)
    result = backup_exec.gc(context.inventory().db, repo, policy, dry_run=dry_run)
    rows = [{"point": p, "action": "keep", "why": w} for p, w in sorted(result.kept.items())]
    verb = "would remove" if dry_run else "removed"
    why = "no retention rule keeps it"
    rows += [{"point": p, "action": verb, "why": why} for p in result.removed]
    if output is OutputFormat.json:
        typer.echo(to_json(asdict(result)))
    else:
        emit(rows, output)


def restore_cmd(
    vm: str = typer.Argument(..., help="The VM the restore point belongs to (name or UUID)."),
    point: str = typer.Option(..., "--point", help="The restore point's id."),
    host: str | None = typer.Option(None, "--host", help="Restore onto this host."),
    as_name: str | None = typer.Option(
        None, "--as", help="Restore as a new VM with this name (else in place: VM stopped first)."
    ),
    disk_dir: Path | None = typer.Option(None, "--disk-dir", help="Folder for a new VM's disks."),
    start: bool = typer.Option(True, "--start/--no-start", help="Start the restored VM."),
    output: OutputFormat = OutputOption,
) -> None:
    """Restore a VM from any retained restore point, as a new VM or in place."""
    settings = context.settings()
    repo = backup_exec.repository(settings)
    manifest = repo.get(point)
    if vm not in (manifest.vm_name, manifest.vm_uuid):
        from corral.errors import ValidationError

        raise ValidationError(f"restore point {point} belongs to {manifest.vm_name}, not {vm}.")
    restorer = Restorer.from_settings(settings, context.inventory().db)
    done = restorer.restore(point, host=host, as_name=as_name, disk_dir=disk_dir, start=start)
    doc = asdict(done)
    if output is OutputFormat.json:
        typer.echo(to_json(doc))
    else:
        emit([{**doc, "disks": " ".join(done.disks)}], output)


def restore_test_cmd(
    vm: str | None = typer.Option(None, "--vm", help="Test this VM's newest point now."),
    point: str | None = typer.Option(None, "--point", help="Test this restore point."),
    host: str | None = typer.Option(None, "--host", help="Boot it on this host (default: its)."),
    disk_dir: Path | None = typer.Option(None, "--disk-dir", help="Folder for the test's disks."),
    output: OutputFormat = OutputOption,
) -> None:
    """Restore and boot a point on an isolated network, timed (the RTO proven), then remove it;
    without --vm/--point, every VM whose last test is older than the policy's schedule.
    What tests killed half-way left is cleaned up first. Exit 1 when a test failed."""
    settings = context.settings()
    policy = backup_service.load_policy(settings)
    tester = RestoreTester.from_settings(settings, context.inventory().db, policy)
    results = tester.run(vm, point=point, host=host, disk_dir=disk_dir)
    _emit_tests(results, output)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def restore_tests_cmd(
    vm: str | None = typer.Option(None, "--vm", help="Only this VM's tests (name or UUID)."),
    output: OutputFormat = OutputOption,
) -> None:
    """The stored restore tests, newest first: booted or not, in how long, RTO met or not."""
    _emit_tests(restore_history(context.inventory().db, vm), output)


def _emit_tests(results: list[RestoreTestResult], output: OutputFormat) -> None:
    rows = [{**asdict(r), "tested_at": r.tested_at.isoformat()} for r in results]
    if output is OutputFormat.json:
        typer.echo(to_json(rows))
    else:
        emit(rows, output)
