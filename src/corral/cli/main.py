"""The ``corral`` command: one Typer app, each command group in its own module.

A command group module exposes ``register(app)``; the list below is the one
place they are wired in. Every CorralError becomes one clear sentence on stderr
and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from rich.console import Console

from corral.errors import CorralError

_app = typer.Typer(
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


#: Command-group modules, each with a ``register(app: typer.Typer) -> None``, and the
#: top-level commands each one adds (so a command imports only its own module: the
#: planning engines pull in OR-Tools, which is slow to import).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "corral.cli.inventory": ("hosts", "vm", "sync", "vms", "events", "volumes", "export", "watch"),
    "corral.cli.serve": ("serve",),
    "corral.cli.demo": ("demo",),
    "corral.cli.tokens": ("token",),
    "corral.cli.config": ("config",),
    "corral.cli.plan": ("plan",),
    "corral.cli.ha": ("ha",),
    "corral.cli.sim": ("sim",),
    "corral.cli.metrics": ("metrics",),
    "corral.cli.sprawl": ("sprawl", "cost"),
    "corral.cli.reclaim": ("reclaim",),
    "corral.cli.jobs": ("jobs",),
}


_registered: set[str] = set()


def __getattr__(name: str) -> typer.Typer:
    """``corral.cli.main.app``: the whole CLI, every command group registered (for tests)."""
    if name == "app":
        _register(list(COMMAND_MODULES))
        return _app
    raise AttributeError(name)


def _register(names: list[str]) -> None:
    for name in names:
        if name in _registered:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # group not built yet
                continue
            raise
        module.register(_app)
        _registered.add(name)


def _modules_for(argv: list[str]) -> list[str]:
    """Only the module that owns the command being run; every module for help or a typo."""
    first = next((a for a in argv if not a.startswith("-")), None)
    owners = [mod for mod, cmds in COMMAND_MODULES.items() if first in cmds]
    return owners or list(COMMAND_MODULES)


def run() -> None:
    """Console-script entry point."""
    err = Console(stderr=True)
    _register(_modules_for(sys.argv[1:]))
    try:
        _app()
    except CorralError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: one sentence, the traceback only on request
        if os.environ.get("CORRAL_DEBUG"):
            raise
        err.print(
            f"[bold red]error:[/] Corral hit an unexpected {type(exc).__name__}: {str(exc)[:200]} "
            "(run again with CORRAL_DEBUG=1 for the traceback, and please report it).",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
