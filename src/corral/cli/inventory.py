"""Inventory commands: hosts, sync, VMs, events, storage, export.

Imported by every one of them, ``corral vms`` included: what only some commands use (the
inventory service, SQLAlchemy, progress bars) is imported inside those commands. ``corral
vms`` reads a current database through corral.inventory.listing, without the ORM.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, record, to_json
from corral.cli.quickparams import QuickCommand
from corral.errors import ConflictError, HostUnreachableError, ValidationError
from corral.inventory.listing import VMFilter, quick_page

if TYPE_CHECKING:
    from corral.inventory.sync import HostResult

hosts_app = typer.Typer(help="Register and list hypervisor hosts.", no_args_is_help=True)
vm_app = typer.Typer(help="Show and annotate one VM.", no_args_is_help=True)
token_cols = None

VM_COLUMNS = [
    "name",
    "host",
    "state",
    "vcpus",
    "memory_mib",
    "disk_gib",
    "owner",
    "department",
    "snapshots",
]
HOST_COLUMNS = [
    "name",
    "status",
    "vms",
    "cpus",
    "mhz",
    "memory_mib",
    "cpu_model",
    "hypervisor_type",
    "uri",
]


def register(app: typer.Typer) -> None:
    app.add_typer(hosts_app, name="hosts")
    app.add_typer(vm_app, name="vm")
    app.command("sync")(sync)
    app.command("vms", cls=QuickCommand)(vms)
    app.command("events")(events)
    app.command("volumes")(volumes)
    app.command("networks")(networks)
    app.command("export")(export)
    app.command("watch")(watch)


@hosts_app.command("add")
def hosts_add(
    name: str = typer.Argument(..., help="A short name for the host, e.g. kvm-01."),
    uri: str = typer.Argument(
        ..., help="libvirt URI, e.g. qemu+ssh://root@kvm-01/system or test:///path/node.xml"
    ),
    username: str | None = typer.Option(None, help="User name for SASL/password authentication."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Register a host by its libvirt URI; a password is stored encrypted, never shown."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    added = context.inventory().add_host(name, uri, username, password)
    emit_object(record(added), output, title="host added")


@hosts_app.command("import")
def hosts_import(
    file: Path = typer.Argument(
        ..., help="CSV with a header row name,uri[,username], or a JSON/YAML list of them."
    ),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Leave hosts already registered (same name or URI) alone."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Register many hosts at once, all or none; each is identified at its first sync."""
    from corral.inventory.hosts_file import read_hosts_file

    done = context.inventory().import_hosts(read_hosts_file(file), skip_existing=skip_existing)
    emit_object(
        {"added": len(done.added), "skipped": list(done.skipped)}, output, title="hosts imported"
    )


@hosts_app.command("remove")
def hosts_remove(
    name: str,
    forget_vms: bool = typer.Option(
        False, help="Also forget its VMs (default: keep their last known state)."
    ),
) -> None:
    """Unregister a host."""
    context.inventory().remove_host(name, forget_vms=forget_vms)
    typer.echo(f"host {name} removed")


@hosts_app.command("list")
def hosts_list(output: OutputFormat = OutputOption) -> None:
    """List the registered hosts and what was last read from them."""
    emit(context.inventory().list_hosts(), output, HOST_COLUMNS, title="hosts")


def sync(
    host: list[str] = typer.Option(None, "--host", "-H", help="Only these hosts (repeatable)."),
    output: OutputFormat = OutputOption,
) -> None:
    """Read every host and record what changed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    inv = context.inventory()
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]sync[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task("", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, description=name)

        report = inv.sync(host or None, progress)
    if output is OutputFormat.json:
        typer.echo(to_json(report.as_dict()))
    else:
        emit(
            [vars(h) for h in report.hosts],
            output,
            ["host", "status", "vms_seen", "vms_changed", "error"],
        )
    if output is OutputFormat.table:
        changes = ", ".join(f"{k} {v}" for k, v in sorted(report.events.items())) or "no changes"
        typer.echo(f"events: {changes}")
    _fail_for_hosts_left_out(report.hosts)


def _fail_for_hosts_left_out(hosts: list[HostResult]) -> None:
    """The others are synced; a host that did not answer (exit 5) or is registered twice
    (exit 4) still makes the command fail, so cron and scripts notice."""
    for status, error in (("unreachable", HostUnreachableError), ("duplicate", ConflictError)):
        left_out = [h for h in hosts if h.status == status]
        if left_out:
            raise error("; ".join(f"host {h.host} was not synced: {h.error}" for h in left_out))


def vms(
    host: str | None = typer.Option(None, help="On this host."),
    state: str | None = typer.Option(None, help="running, shutoff, paused, crashed ..."),
    owner: str | None = typer.Option(None),
    department: str | None = typer.Option(None),
    project: str | None = typer.Option(None),
    environment: str | None = typer.Option(None),
    tag: str | None = typer.Option(None),
    search: str | None = typer.Option(
        None, "--search", "-s", help="Text in a name or purpose, or the start of a UUID."
    ),
    no_owner: bool = typer.Option(False, "--no-owner", help="Only VMs nobody owns."),
    no_purpose: bool = typer.Option(False, "--no-purpose", help="Only VMs with no purpose."),
    templates: bool | None = typer.Option(
        None, "--templates/--no-templates", help="Only / never templates."
    ),
    older_than: int | None = typer.Option(
        None, "--older-than", help="Created more than N days ago."
    ),
    off_for: int | None = typer.Option(None, "--off-for", help="Powered off for at least N days."),
    expired: bool = typer.Option(False, help="Lease expired."),
    deleted: bool = typer.Option(False, help="Only deleted VMs (tombstones)."),
    sort: str = typer.Option(
        "name", help="name, state, vcpus, memory_mib, created_at, state_since, owner ..."
    ),
    desc: bool = typer.Option(False, help="Sort descending."),
    limit: int | None = typer.Option(None, help="At most N VMs."),
    output: OutputFormat = OutputOption,
) -> None:
    """List, search and filter VMs across every host."""
    f = VMFilter(
        host=host,
        state=state,
        owner=owner,
        department=department,
        project=project,
        environment=environment,
        tag=tag,
        search=search,
        no_owner=no_owner,
        no_purpose=no_purpose,
        template=templates,
        older_than_days=older_than,
        off_for_days=off_for,
        expired=expired,
        only_deleted=deleted,
    )
    page = quick_page(
        context.settings(), f, sort=sort, descending=desc, limit=limit
    ) or context.inventory().list_vms(f, sort=sort, descending=desc, limit=limit)
    emit(page.items, output, VM_COLUMNS, title=f"{page.total} VMs")


@vm_app.command("show")
def vm_show(
    ref: str = typer.Argument(..., help="UUID or name."), output: OutputFormat = OutputOption
) -> None:
    """One VM with its disks, NICs, snapshots and history."""
    detail = context.inventory().find_vm(ref)
    if output is OutputFormat.json:
        typer.echo(to_json(detail))
        return
    lists = ("disks", "nics", "snapshot_list", "history")
    flat = {k: v for k, v in record(detail).items() if k not in lists}
    emit_object(flat, output, title=f"VM {detail.name}")
    emit(
        detail.disks,
        output,
        ["target", "device", "path", "format", "capacity_bytes", "backing_path"],
        title="disks",
    )
    emit(detail.nics, output, ["mac", "type", "source", "model"], title="NICs")
    emit(
        detail.snapshot_list,
        output,
        ["name", "created_at", "state", "kind", "size_bytes"],
        title="snapshots",
    )
    emit(detail.history, output, ["at", "kind", "host", "details"], title="history")


@vm_app.command("set")
def vm_set(
    ref: str = typer.Argument(..., help="UUID or name."),
    owner: str | None = typer.Option(None),
    department: str | None = typer.Option(None, help="Department or cost centre."),
    purpose: str | None = typer.Option(None),
    project: str | None = typer.Option(None),
    environment: str | None = typer.Option(None, help="prod, test, dev, staging, lab"),
    expires: str | None = typer.Option(None, help="Lease expiry date, YYYY-MM-DD ('' clears)."),
    protection: str | None = typer.Option(None, help="replicated, restart, backup-only, none"),
    tags: str | None = typer.Option(None, help="Comma-separated tags (replaces the list)."),
    output: OutputFormat = OutputOption,
) -> None:
    """Set ownership metadata: written into the domain's <metadata> and into Corral's store."""
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "owner": owner,
            "department": department,
            "purpose": purpose,
            "project": project,
            "environment": environment,
            "expires_on": expires,
            "protection_tier": protection,
            "tags": tags,
        }.items()
        if v is not None
    }
    if not changes:
        raise ValidationError("give at least one field to set, e.g. --owner alice.")
    detail = record(context.inventory().set_metadata(ref, changes))
    emit_object(
        {k: detail[k] for k in ("uuid", "name", *changes)}, output, title="metadata updated"
    )


@vm_app.command("history")
def vm_history(ref: str, output: OutputFormat = OutputOption) -> None:
    """Every recorded change of one VM."""
    emit(context.inventory().find_vm(ref).history, output, ["at", "kind", "host", "details"])


def events(
    vm: str | None = typer.Option(None, help="Only this VM (UUID or name)."),
    kind: str | None = typer.Option(None, help="created, deleted, started, stopped, migrated ..."),
    limit: int = typer.Option(100, help="Newest N events."),
    output: OutputFormat = OutputOption,
) -> None:
    """The newest inventory events across the fleet."""
    emit(
        context.inventory().events(vm=vm, kind=kind, limit=limit),
        output,
        ["at", "kind", "host", "vm_name", "details"],
    )


def volumes(
    orphaned: bool = typer.Option(False, "--orphaned", help="Only volumes no VM uses."),
    output: OutputFormat = OutputOption,
) -> None:
    """Storage volumes on every host; an orphaned volume is a disk no VM uses."""
    volumes = context.inventory().list_volumes(orphaned_only=orphaned)
    rows = [record(v) for v in volumes]
    if output is not OutputFormat.json:  # JSON keeps bytes; people read MiB and GiB
        rows = [
            {**r, "capacity": _size(v.capacity_bytes), "allocation": _size(v.allocation_bytes)}
            for r, v in zip(rows, volumes, strict=True)
        ]
    emit(rows, output, ["host", "pool", "name", "capacity", "allocation", "used_by_name", "path"])


def _size(n: int) -> str:
    """A size for a table: bytes in the largest binary unit that keeps it at least 1."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def networks(
    unused: bool = typer.Option(False, "--unused", help="Only networks no VM has a NIC on."),
    output: OutputFormat = OutputOption,
) -> None:
    """Virtual networks on every host, with how many VMs use each."""
    rows = context.inventory().list_networks(unused_only=unused)
    emit(rows, output, ["host", "name", "active", "forward_mode", "bridge", "vms"])


def export(
    out: Path = typer.Argument(..., help="Folder to write into (created)."),
    fmt: str = typer.Option(
        "csv", "--format", help="csv or json (one file per table), or fleet (one fleet file)."
    ),
) -> None:
    """Export the inventory: a CSV/JSON file per table, or one fleet file.

    csv/json: hosts, VMs, disks, snapshots and volumes, one file each (like RVTools'
    tabs). fleet: fleet.yaml, the file every planning, HA, cost and sprawl command
    reads with --fleet-file (docs/fleet-format.md).
    """
    if fmt == "fleet":
        from corral.services.fleet import write_fleet_file

        typer.echo(str(write_fleet_file(context.inventory(), out / "fleet.yaml")))
        return
    if fmt not in ("csv", "json"):
        raise ValidationError("export format must be csv, json or fleet.")
    written = context.inventory().export(out, fmt, context.settings().export_chunk_size)
    for path in written:
        typer.echo(str(path))


def watch(
    interval: float = typer.Option(300.0, help="Poll every host this often (seconds)."),
    duration: float | None = typer.Option(None, "--for", help="Stop after this many seconds."),
) -> None:
    """Keep the inventory current: sync a host on each libvirt lifecycle event, and poll."""
    from corral.inventory.watch import Watcher

    def report(hosts: list[str] | None, rep: Any) -> None:
        changes = ", ".join(f"{k} {v}" for k, v in sorted(rep.events.items())) or "no changes"
        which = "all hosts" if hosts is None else ", ".join(hosts)
        typer.echo(f"{rep.finished_at:%H:%M:%S} sync {which}: {changes}")

    watcher = Watcher(context.inventory(), poll_interval=interval, on_sync=report)
    try:
        watcher.run(duration)
    except KeyboardInterrupt:
        watcher.stop()
