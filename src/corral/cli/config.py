"""``corral config show``: the effective settings and where each came from."""

from __future__ import annotations

import dataclasses

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit
from corral.config import describe

config_app = typer.Typer(help="Corral's effective settings.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show")
def show(output: OutputFormat = OutputOption) -> None:
    """Every setting's value (secrets redacted), its environment variable and its source."""
    rows = [dataclasses.asdict(s) for s in describe(context.settings())]
    emit(rows, output, ["name", "value", "source", "env", "help"], title="settings")
