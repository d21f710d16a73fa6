"""``corral template`` (the base-image catalog) and ``corral provision`` (make a VM from one).

Thin: every decision is in corral.services.templates and corral.services.provision.
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object
from corral.domain.provision import CloudInit, DiskMode, ProvisionResult, ProvisionSpec
from corral.errors import ValidationError

template_app = typer.Typer(help="The template catalog: base images new VMs are made from.")
provision_app = typer.Typer(help="Make VMs from templates on a host, and list the attempts.")

TEMPLATE_COLUMNS = ["name", "pool", "volume", "vcpus", "memory_mib", "network", "domain_type"]
RESULT_COLUMNS = ["id", "status", "name", "host", "template", "uuid", "reason"]
#: Exit status of a provisioning that failed (and was rolled back): a hypervisor refusal.
FAILED_EXIT = 5


def register(app: typer.Typer) -> None:
    app.add_typer(template_app, name="template", no_args_is_help=True)
    app.add_typer(provision_app, name="provision", no_args_is_help=True)


@functools.cache
def _templates() -> Any:
    from corral.services.templates import TemplateService

    return TemplateService(context.inventory().db, context.settings().boot_dir)


def _service() -> Any:
    from corral.services.provision import ProvisionService

    return ProvisionService(context.inventory(), _templates())


# -- templates -------------------------------------------------------------------------------
@template_app.command("add")
def template_add(
    name: str = typer.Argument(..., help="The template's name, e.g. debian-12."),
    pool: str | None = typer.Option(None, "--pool", help="The storage pool holding the image."),
    volume: str | None = typer.Option(None, "--volume", help="The base image's volume name."),
    from_vm: str | None = typer.Option(
        None, "--from-vm", help="Use this inventory VM's first disk (a template domain)."
    ),
    vcpus: int | None = typer.Option(None, "--vcpus", help="Default vCPUs (1)."),
    memory_mib: int | None = typer.Option(None, "--memory-mib", help="Default memory (1024)."),
    network: str | None = typer.Option(None, "--network", help="Default libvirt network."),
    domain_type: str | None = typer.Option(None, "--domain-type", help="kvm (default) or qemu."),
    machine: str | None = typer.Option(None, "--machine", help="Machine type, e.g. q35."),
    kernel: str | None = typer.Option(None, "--kernel", help="Direct kernel boot: the kernel."),
    initrd: str | None = typer.Option(None, "--initrd", help="Direct kernel boot: the initrd."),
    cmdline: str | None = typer.Option(None, "--cmdline", help="Direct kernel boot: cmdline."),
    description: str | None = typer.Option(None, "--description"),
    output: OutputFormat = OutputOption,
) -> None:
    """Add a template: a pool volume (--pool, --volume) or a VM's disk (--from-vm)."""
    given = {
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "network": network,
        "domain_type": domain_type,
        "machine": machine,
        "kernel": kernel,
        "initrd": initrd,
        "cmdline": cmdline,
        "description": description,
    }
    chosen = {k: v for k, v in given.items() if v is not None}
    if from_vm is not None:
        if pool or volume:
            raise ValidationError("give either --from-vm or --pool and --volume, not both.")
        added = _templates().from_vm(name, from_vm, **chosen)
    elif pool and volume:
        entry = {"name": name, "pool": pool, "volume": volume, **chosen}
        added = _templates().add_mapping(entry, "the command line")
    else:
        raise ValidationError("a template needs --pool and --volume, or --from-vm.")
    emit_object(asdict(added), output)


@template_app.command("import")
def template_import(
    path: Path = typer.Argument(..., help="A YAML (or JSON) file with 'templates:' as a list."),
    output: OutputFormat = OutputOption,
) -> None:
    """Add every template of a catalog file, all or none."""
    from corral.safeload import load_file

    added = _templates().import_catalog(load_file(path, "template catalog"), str(path))
    emit([asdict(t) for t in added], output, TEMPLATE_COLUMNS)


@template_app.command("list")
def template_list(output: OutputFormat = OutputOption) -> None:
    emit([asdict(t) for t in _templates().all()], output, TEMPLATE_COLUMNS)


@template_app.command("show")
def template_show(name: str, output: OutputFormat = OutputOption) -> None:
    emit_object(asdict(_templates().get(name)), output)


@template_app.command("remove")
def template_remove(name: str) -> None:
    """Remove a template from the catalog; its volume and the VMs made from it stay."""
    _templates().remove(name)
    typer.echo(f"template {name} removed")


# -- provisioning ----------------------------------------------------------------------------
@provision_app.command("create")
def provision_create(
    name: str = typer.Argument(..., help="The new VM's name."),
    template: str = typer.Option(..., "--template", "-t"),
    host: str = typer.Option(..., "--host", help="The registered host to create it on."),
    owner: str = typer.Option(..., "--owner"),
    department: str = typer.Option(..., "--department"),
    expires_on: str | None = typer.Option(None, "--expires", help="Lease end, e.g. 2027-03-31."),
    vcpus: int | None = typer.Option(None, "--vcpus"),
    memory_mib: int | None = typer.Option(None, "--memory-mib"),
    disk_gib: int | None = typer.Option(None, "--disk-gib", help="Disk size (at least the image)."),
    network: str | None = typer.Option(None, "--network"),
    full_copy: bool = typer.Option(False, "--full-copy", help="Copy the image, no linked clone."),
    purpose: str | None = typer.Option(None, "--purpose"),
    environment: str | None = typer.Option(None, "--environment"),
    hostname: str | None = typer.Option(None, "--hostname", help="Guest hostname (the name)."),
    ssh_key: list[str] = typer.Option([], "--ssh-key", help="An SSH public key (repeatable)."),
    user_data: Path | None = typer.Option(None, "--user-data", help="cloud-init user-data file."),
    network_config: Path | None = typer.Option(
        None, "--network-config", help="cloud-init network-config file (YAML, version 1 or 2)."
    ),
    no_start: bool = typer.Option(False, "--no-start", help="Define it but do not start it."),
    output: OutputFormat = OutputOption,
) -> None:
    """Create a VM from a template; on failure everything made so far is removed (exit 5)."""
    from corral.safeload import load_file, read_text

    spec = ProvisionSpec(
        name=name,
        template=template,
        host=host,
        owner=owner,
        department=department,
        created_by=context.os_user(),
        expires_on=_date(expires_on),
        vcpus=vcpus,
        memory_mib=memory_mib,
        disk_gib=disk_gib,
        network=network,
        disk_mode=DiskMode.copy if full_copy else DiskMode.linked,
        purpose=purpose,
        environment=environment,
        cloud_init=CloudInit(
            hostname=hostname,
            ssh_authorized_keys=tuple(ssh_key),
            user_data=read_text(user_data, "user data") if user_data else None,
            network_config=load_file(network_config, "network config") if network_config else None,
        ),
        start=not no_start,
    )
    result: ProvisionResult = _service().provision(spec)
    emit_object(asdict(result), output)
    if not result.ok:
        left = f" Still on the host: {', '.join(result.leftovers)}." if result.leftovers else ""
        typer.echo(f"error: VM {name} was not created: {result.reason}{left}", err=True)
        raise typer.Exit(FAILED_EXIT)


@provision_app.command("list")
def provision_list(
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    output: OutputFormat = OutputOption,
) -> None:
    """The newest provisioning attempts first, with why each failed one failed."""
    emit([asdict(r) for r in _service().history(limit)], output, RESULT_COLUMNS)


@provision_app.command("clean")
def provision_clean(
    attempt: int = typer.Argument(..., help="The attempt's id (see 'corral provision list')."),
    output: OutputFormat = OutputOption,
) -> None:
    """Remove what a failed attempt left on a host that stopped answering half-way."""
    result: ProvisionResult = _service().clean_up(attempt)
    emit_object(asdict(result), output)
    if result.leftovers:
        typer.echo(f"error: still on host {result.host}: {', '.join(result.leftovers)}.", err=True)
        raise typer.Exit(FAILED_EXIT)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"lease end {value!r} is not a date like 2027-03-31.") from None
