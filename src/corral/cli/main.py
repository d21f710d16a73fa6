"""The ``corral`` command: one Typer app, each command group in its own module.

A command group module exposes ``register(app)``; the list below is the one
place they are wired in. Every CorralError becomes one clear sentence on stderr
and its class's exit status (see corral.errors: 2 bad input, 3 not found,
4 conflict, 5 unreachable host, 1 a bug), never a traceback.

A host that never answered may leave a call hanging in a daemon thread (see
corral.hypervisor.deadline); the process then leaves with ``os._exit`` after
flushing its output, so no finaliser waits on that host.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

import typer
import typer.main
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from corral.cli.quickparams import check_plainly
from corral.errors import CorralError

if TYPE_CHECKING:
    from typer._click import Command, Context, Parameter  # typer's own copy of click


class _LazyGroup(TyperGroup):
    """The top-level group: a command's module is imported only when that command runs.

    ``corral --help`` lists every command from :data:`COMMANDS` without importing any
    command module (they pull in SQLAlchemy, the engines, OR-Tools); its own option
    (``--home``) is checked without Pydantic (corral.cli.quickparams).
    """

    def get_params(self, ctx: Context) -> list[Parameter]:
        params = super().get_params(ctx)
        check_plainly(params)
        return params

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        real = super().get_command(ctx, cmd_name)
        if real is not None or cmd_name not in COMMANDS:
            return real
        return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1])  # for the help listing

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        """Import the module of the command about to run, and add its commands."""
        name = args[0] if args else None
        if name in COMMANDS and name not in self.commands:
            sub = typer.Typer()
            importlib.import_module(COMMANDS[name][0]).register(sub)
            for cmd_name, cmd in typer.main.get_group(sub).commands.items():
                self.add_command(cmd, cmd_name)
        return super().resolve_command(ctx, args)


_app = typer.Typer(
    cls=_LazyGroup,
    name="corral",
    help="See, control and plan a fleet of virtual machines across libvirt hosts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@_app.callback()
def _root(
    home: str | None = typer.Option(
        None, "--home", help="Corral's folder (overrides CORRAL_HOME and the settings file)."
    ),
) -> None:
    """See, control and plan a fleet of virtual machines across libvirt hosts."""
    if home:
        from pathlib import Path

        from corral.cli import context

        context.set_flags(home=Path(home).expanduser())


#: Every top-level command: the module that registers it (``register(app)``) and its
#: one-line help, listed by ``corral --help`` without importing the module.
#: tests/test_cli_options.py checks the lines against the commands' own help.
COMMANDS: dict[str, tuple[str, str]] = {
    "hosts": ("corral.cli.inventory", "Register and list hypervisor hosts."),
    "sync": ("corral.cli.inventory", "Read every host and record what changed."),
    "vms": ("corral.cli.inventory", "List, search and filter VMs across every host."),
    "vm": ("corral.cli.inventory", "Show and annotate one VM."),
    "events": ("corral.cli.inventory", "The newest inventory events across the fleet."),
    "volumes": (
        "corral.cli.inventory",
        "Storage volumes on every host; an orphaned volume is a disk no VM uses.",
    ),
    "networks": (
        "corral.cli.inventory",
        "Virtual networks on every host, with how many VMs use each.",
    ),
    "export": (
        "corral.cli.inventory",
        "Export the inventory: a CSV/JSON file per table, or one fleet file.",
    ),
    "watch": (
        "corral.cli.inventory",
        "Keep the inventory current: sync a host on each libvirt lifecycle event, and poll.",
    ),
    "poll": (
        "corral.cli.poll",
        "Keep every host current: each read once per cycle, sharded over processes.",
    ),
    "plan": (
        "corral.cli.plan",
        "Plan capacity: place, consolidate, rebalance, evacuate, what-if, forecast.",
    ),
    "backup": (
        "corral.cli.backup",
        "Backup: policy per tier and VM, a staggered schedule that meets every RPO, coverage.",
    ),
    "restore": (
        "corral.cli.backup_exec",
        "Restore a VM from any retained restore point, as a new VM or in place.",
    ),
    "forensic": (
        "corral.cli.forensic",
        "Forensic snapshots (memory + disks, hashed, chain of custody) and rollbacks.",
    ),
    "ha": ("corral.cli.ha", "High availability: admission control and failover plans."),
    "alerts": ("corral.cli.alerts", "Alert rules, alerts, acknowledgements and silences."),
    "sim": (
        "corral.cli.sim",
        "Simulate dynamic VM consolidation on recorded traces (CloudSim PlanetLab set-up).",
    ),
    "metrics": (
        "corral.cli.metrics",
        "Performance history: collect, backfill, query, chart, export.",
    ),
    "sprawl": (
        "corral.cli.sprawl",
        "Sprawl: idle, powered-off, orphaned, expired VMs and right-sizing.",
    ),
    "cost": ("corral.cli.sprawl", "Cost model: monthly cost per VM, chargeback, licences."),
    "reclaim": (
        "corral.cli.reclaim",
        "Reclamation: flag → notify owner → quarantine → archive → delete, every step "
        "undoable until deletion.",
    ),
    "serve": ("corral.cli.serve", "Serve the REST API (OpenAPI at /openapi.json, docs at /docs)."),
    "demo": (
        "corral.cli.demo",
        "Build a demo fleet of libvirt test-driver hosts, sync its history, summarise, serve.",
    ),
    "token": ("corral.cli.tokens", "Create, list and revoke API bearer tokens."),
    "user": (
        "corral.cli.users",
        "Add, list, disable users; grant and revoke roles and departments.",
    ),
    "audit": ("corral.cli.audit", "The audit log of every write: list, verify."),
    "request": (
        "corral.cli.requests",
        "VM requests: quote, create, submit, approve, deny, cancel, extend, expire.",
    ),
    "quota": (
        "corral.cli.requests",
        "Department quotas on vCPUs, memory, storage, VMs and cost.",
    ),
    "jobs": ("corral.cli.jobs", "Long-running jobs run by the API server."),
    "config": ("corral.cli.config", "Corral's effective settings."),
    "template": (
        "corral.cli.provision",
        "The template catalog: base images new VMs are made from.",
    ),
    "provision": (
        "corral.cli.provision",
        "Make VMs from templates on a host, and list the attempts.",
    ),
    "blueprint": (
        "corral.cli.blueprints",
        "Blueprints: tiers of VMs requested, approved and provisioned as one unit.",
    ),
    "policy": ("corral.cli.policy", "Governance policy: check the inventory for drift."),
}
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(mod for mod, _ in COMMANDS.values()))


_registered: set[str] = set()


def __getattr__(name: str) -> typer.Typer:
    """``corral.cli.main.app``: the whole CLI, every command group registered (for tests)."""
    if name == "app":
        _register(list(COMMAND_MODULES))
        return _app
    raise AttributeError(name)


def _register(names: list[str]) -> None:
    for name in names:
        if name not in _registered:
            importlib.import_module(name).register(_app)
            _registered.add(name)


def run() -> None:
    """Console-script entry point."""
    from corral.config import keep_files_private

    keep_files_private()
    code = _main()
    deadline = sys.modules.get("corral.hypervisor.deadline")  # loaded only if a host was called
    if deadline is not None and deadline.has_late_calls():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _main() -> int:
    """Run the command; its exit status (Typer ends every command with SystemExit)."""
    err = Console(stderr=True)
    try:
        _app()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except CorralError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:  # a bug: one sentence, the traceback only on request
        if os.environ.get("CORRAL_DEBUG"):
            raise
        said = " ".join(str(exc).split())[:200]  # one line, however the exception reads
        err.print(
            f"[bold red]error:[/] Corral hit an unexpected {type(exc).__name__}: {said} "
            "(run again with CORRAL_DEBUG=1 for the traceback, and please report it).",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return 0
