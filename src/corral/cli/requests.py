"""``corral request`` and ``corral quota``: VM requests, their approval, department quotas.

The command line acts as the local administrator (docs/auth.md) under the OS user's name, so
``corral request approve`` refuses a request that same user asked for or owns.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object
from corral.domain.access import Principal, local_administrator
from corral.domain.requests import RequestState, Size
from corral.errors import ValidationError
from corral.services.quotas import Limits, QuotaService, QuotaView
from corral.services.requests import Quote, RequestService, RequestSpec, RequestView

if TYPE_CHECKING:
    from corral.services.fulfil import RequestProvisioner

request_app = typer.Typer(
    help="VM requests: quote, create, submit, approve, deny, cancel, extend, expire.",
    no_args_is_help=True,
)
quota_app = typer.Typer(
    help="Department quotas on vCPUs, memory, storage, VMs and cost.", no_args_is_help=True
)

COLUMNS = [
    "id",
    "state",
    "department",
    "template",
    "count",
    "size",
    "environment",
    "monthly_cost",
    "requester",
    "owner",
    "approvals",
    "reasons",
]
QUOTA_COLUMNS = ["department", "dimension", "limit", "used"]
#: Exit status when the request's VMs could not be made (the request is failed, rolled back).
FAILED_EXIT = 5
PROVISION = typer.Option(
    None,
    "--provision/--no-provision",
    help="Make the VMs here once approved (default: the provision_on_approval setting).",
)


def register(app: typer.Typer) -> None:
    app.add_typer(request_app, name="request")
    app.add_typer(quota_app, name="quota")


@functools.cache
def _requests() -> RequestService:
    from corral.services.request_setup import request_service

    return request_service(context.inventory(), context.settings())


@functools.cache
def _provisioner() -> RequestProvisioner:
    from corral.services.request_setup import request_provisioner

    return request_provisioner(context.inventory(), context.settings(), _requests())


def _then_provision(view: RequestView, provision: bool | None) -> RequestView:
    """Make the VMs of a request that just became approved, here, reporting each step (on
    stderr); ``provision`` None follows the provision_on_approval setting."""
    wanted = context.settings().provision_on_approval if provision is None else provision
    if not wanted or view.state is not RequestState.approved or view.kind != "vms":
        return view
    return _provision(view.id)


def _provision(request_id: int) -> RequestView:
    def say(line: str) -> None:
        typer.echo(line, err=True)

    view = _provisioner().provision(request_id, context.os_user(), say)
    if view.state is RequestState.failed:
        typer.echo(f"error: request {request_id} failed: {view.failure_reason}", err=True)
    return view


def _exit_if_failed(view: RequestView) -> None:
    if view.state is RequestState.failed and view.kind == "vms":
        raise typer.Exit(FAILED_EXIT)


@functools.cache
def _quotas() -> QuotaService:
    from corral.services.request_setup import quota_service

    return quota_service(context.inventory(), context.settings())


def _me() -> Principal:
    return local_administrator(context.os_user())


def _row(v: RequestView) -> dict[str, Any]:
    s = v.spec
    return {
        "id": v.id,
        "kind": v.kind,
        "state": v.state.value,
        "department": s.department,
        "template": s.template if s.blueprint is None else f"blueprint {s.blueprint}",
        "count": s.count,
        "size": f"{s.size.vcpus}cpu/{s.size.memory_mib}MiB/{s.size.disk_gb:g}GB",
        "environment": s.environment,
        "monthly_cost": f"{v.monthly_cost:,.2f} {v.currency}",
        "requester": v.requester,
        "owner": s.owner,
        "approvals": f"{len(v.approvers)}/{v.approvals_needed}",
        "reasons": "; ".join(r.text for r in v.reasons),
        "vms": list(v.provisioned_vms),
        "failure": v.failure_reason,
        "placement": [f"{x.vm}@{x.host}" for x in v.placement],
        "capacity": v.capacity_status,
        "ha_host": v.ha_host,
        "decisions": [
            f"{d.at.isoformat()} {d.actor} {d.action} {d.note}".strip() for d in v.decisions
        ],
    }


def _spec(
    template: str | None,
    count: int,
    vcpus: int | None,
    memory_mib: int | None,
    disk_gb: float,
    owner: str,
    department: str,
    purpose: str,
    environment: str,
    lease_days: int,
    blueprint: str | None = None,
) -> RequestSpec:
    if blueprint is not None:
        if template is not None:
            raise ValidationError("give --template or --blueprint, not both.")
        size = Size(1, 1, 0.0)  # the blueprint's tiers say
    elif template is None or vcpus is None or memory_mib is None:
        raise ValidationError(
            "a request needs --template, --vcpus and --memory-mib (or --blueprint)."
        )
    else:
        size = Size(vcpus, memory_mib, disk_gb)
    return RequestSpec(
        template or "",
        count,
        size,
        owner,
        department,
        purpose,
        environment,
        lease_days,
        blueprint,
    )


TEMPLATE = typer.Option(None, "--template", "-t", help="The template to clone, by name.")
BLUEPRINT = typer.Option(
    None, "--blueprint", "-b", help="A blueprint instead of a template: all its tiers as one."
)
COUNT = typer.Option(1, "--count", "-n", help="How many VMs.")
VCPUS = typer.Option(None, "--vcpus", help="vCPUs of each VM (with --template).")
MEMORY = typer.Option(None, "--memory-mib", help="Memory of each VM, MiB (with --template).")
DISK = typer.Option(0.0, "--disk-gb", help="Disk of each VM, GB.")
OWNER = typer.Option(..., "--owner", help="Who owns the VMs.")
DEPARTMENT = typer.Option(..., "--department", "-d", help="The department that pays.")
PURPOSE = typer.Option(..., "--purpose", help="What the VMs are for.")
ENVIRONMENT = typer.Option(..., "--environment", "-e", help="dev, test, staging, prod ...")
LEASE = typer.Option(..., "--lease-days", help="How long the VMs are needed, in days.")


@request_app.command("quote")
def quote(
    template: str | None = TEMPLATE,
    count: int = COUNT,
    vcpus: int | None = VCPUS,
    memory_mib: int | None = MEMORY,
    disk_gb: float = DISK,
    owner: str = OWNER,
    department: str = DEPARTMENT,
    purpose: str = PURPOSE,
    environment: str = ENVIRONMENT,
    lease_days: int = LEASE,
    blueprint: str | None = BLUEPRINT,
    output: OutputFormat = OutputOption,
) -> None:
    """Monthly cost, placement and quota of a request, before it is sent (nothing is saved)."""
    spec = _spec(
        template,
        count,
        vcpus,
        memory_mib,
        disk_gb,
        owner,
        department,
        purpose,
        environment,
        lease_days,
        blueprint,
    )
    q: Quote = _requests().quote(spec, _me())
    emit_object(
        {
            "monthly_cost": f"{q.monthly_cost:,.2f} {q.currency}",
            "per_vm": f"{q.per_vm_cost:,.2f} {q.currency}",
            "capacity": q.capacity.status.value,
            "placement": [f"{x.vm}@{x.host}" for x in q.capacity.slots],
            "ha_host": q.capacity.ha_host,
            "decision": q.evaluation.decision.value,
            "approvals_needed": q.evaluation.approvals_needed,
            "reasons": [r.text for r in q.evaluation.reasons],
        },
        output,
    )


@request_app.command("create")
def create(
    template: str | None = TEMPLATE,
    count: int = COUNT,
    vcpus: int | None = VCPUS,
    memory_mib: int | None = MEMORY,
    disk_gb: float = DISK,
    owner: str = OWNER,
    department: str = DEPARTMENT,
    purpose: str = PURPOSE,
    environment: str = ENVIRONMENT,
    lease_days: int = LEASE,
    blueprint: str | None = BLUEPRINT,
    submit: bool = typer.Option(False, "--submit", help="Send it at once."),
    provision: bool | None = PROVISION,
    output: OutputFormat = OutputOption,
) -> None:
    """A draft request (sent at once with --submit)."""
    spec = _spec(
        template,
        count,
        vcpus,
        memory_mib,
        disk_gb,
        owner,
        department,
        purpose,
        environment,
        lease_days,
        blueprint,
    )
    view = _then_provision(_requests().create(spec, _me(), submit=submit), provision)
    emit([_row(view)], output, COLUMNS)
    _exit_if_failed(view)


@request_app.command("submit")
def submit(
    request_id: int, provision: bool | None = PROVISION, output: OutputFormat = OutputOption
) -> None:
    """Send a draft: approved at once (and its VMs made), left to the approvers, or denied."""
    view = _then_provision(_requests().submit(request_id, _me()), provision)
    emit([_row(view)], output, COLUMNS)
    _exit_if_failed(view)


@request_app.command("list")
def list_requests(
    state: RequestState | None = typer.Option(None, "--state", help="Only this state."),
    output: OutputFormat = OutputOption,
) -> None:
    emit([_row(v) for v in _requests().listing(_me(), state=state)], output, COLUMNS)


@request_app.command("show")
def show(request_id: int, output: OutputFormat = OutputOption) -> None:
    """One request: its placement, reasons and every decision."""
    emit_object(_row(_requests().get(request_id, _me())), output, title=f"request {request_id}")


@request_app.command("approve")
def approve(
    request_id: int,
    note: str = typer.Option("", "--note", help="Why (kept with the decision)."),
    provision: bool | None = PROVISION,
    output: OutputFormat = OutputOption,
) -> None:
    """Add your approval; never on a request you asked for or own. The last approval makes
    the VMs at once (unless --no-provision or provision_on_approval is off)."""
    view = _then_provision(_requests().approve(request_id, _me(), note), provision)
    emit([_row(view)], output, COLUMNS)
    _exit_if_failed(view)


@request_app.command("provision")
def provision_cmd(request_id: int, output: OutputFormat = OutputOption) -> None:
    """Make the VMs of an approved request, or finish a run that stopped (never twice).

    Exit status 5 when they could not be made: the request is failed and nothing is left."""
    view = _provision(request_id)
    emit([_row(view)], output, COLUMNS)
    _exit_if_failed(view)


@request_app.command("deny")
def deny(
    request_id: int,
    note: str = typer.Option(..., "--note", help="Why it is denied."),
    output: OutputFormat = OutputOption,
) -> None:
    emit([_row(_requests().deny(request_id, _me(), note))], output, COLUMNS)


@request_app.command("cancel")
def cancel(
    request_id: int,
    note: str = typer.Option("", "--note", help="Why."),
    output: OutputFormat = OutputOption,
) -> None:
    """Withdraw a request that is not provisioned; its reserved capacity is released."""
    emit([_row(_requests().cancel(request_id, _me(), note))], output, COLUMNS)


@request_app.command("extend")
def extend(
    vm: str = typer.Argument(..., help="The VM's UUID."),
    days: int = typer.Option(..., "--days", help="How many more days of lease."),
    reason: str = typer.Option(..., "--reason", help="Why the VM is needed longer."),
    output: OutputFormat = OutputOption,
) -> None:
    """Ask for a longer lease: an approver of the VM's department decides."""
    emit([_row(_requests().request_extension(vm, days, reason, _me()))], output, COLUMNS)


@request_app.command("expire")
def expire() -> None:
    """Expire unanswered requests and approved ones never provisioned (run it daily)."""
    done = _requests().expire(context.os_user())
    typer.echo(
        f"expired {len(done)} request(s){': ' if done else ''}{', '.join(str(i) for i in done)}"
    )


def _quota_rows(view: QuotaView) -> list[dict[str, Any]]:
    return [
        {
            "department": view.department,
            "dimension": f.name,
            "limit": getattr(view.limits, f.name),
            "used": round(getattr(view.used, f.name), 2),
        }
        for f in dataclasses.fields(view.limits)
    ]


def _limit(help_text: str) -> Any:
    return typer.Option(None, help=f"{help_text} (omit: no limit).")


@quota_app.command("set")
def set_quota(
    department: str,
    vcpus: float | None = _limit("vCPUs"),
    memory_mib: float | None = _limit("Memory, MiB"),
    storage_gb: float | None = _limit("Storage, GB"),
    vms: float | None = _limit("Number of VMs"),
    monthly_cost: float | None = _limit("Monthly cost, in the cost model's currency"),
    output: OutputFormat = OutputOption,
) -> None:
    """Replace a department's limits; approved, unprovisioned requests count as used."""
    limits = Limits(vcpus, memory_mib, storage_gb, vms, monthly_cost)
    emit(_quota_rows(_quotas().set(department, limits, _me())), output, QUOTA_COLUMNS)


@quota_app.command("show")
def show_quota(department: str, output: OutputFormat = OutputOption) -> None:
    emit(_quota_rows(_quotas().get(department, _me())), output, QUOTA_COLUMNS)


@quota_app.command("list")
def list_quotas(output: OutputFormat = OutputOption) -> None:
    rows = [row for view in _quotas().all(_me()) for row in _quota_rows(view)]
    emit(rows, output, QUOTA_COLUMNS)
