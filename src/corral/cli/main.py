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

app = typer.Typer(
    name="corral",
    help="See, control and plan a fleet of virtual machines across libvirt hosts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Command-group modules, each with a ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: tuple[str, ...] = (
    "corral.cli.inventory",
    "corral.cli.serve",
    "corral.cli.demo",
    "corral.cli.tokens",
    "corral.cli.plan",
    "corral.cli.ha",
    "corral.cli.sim",
    "corral.cli.metrics",
    "corral.cli.sprawl",
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # group not built yet
                continue
            raise
        module.register(app)


_register_all()


def run() -> None:
    """Console-script entry point."""
    err = Console(stderr=True)
    try:
        app()
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
