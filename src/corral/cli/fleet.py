"""The fleet options every planning, HA, cost and sprawl command shares: ``-f FILE`` or ``--live``.

Light on purpose (no engine at import time), so any command module can use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from corral.services.fleet import FleetSnapshot

FleetFileOption = typer.Option(
    None,
    "--fleet-file",
    "-f",
    help="Fleet file, YAML or JSON (docs/fleet-format.md; `corral export --format fleet`).",
)
LiveOption = typer.Option(
    False, "--live", help="Use the live inventory (last sync) instead of a fleet file."
)


def fleet_snapshot(fleet_file: Path | None, live: bool) -> FleetSnapshot:
    """The fleet of the command's ``--fleet-file``/``--live``; notices go to stderr."""
    from corral.cli import context
    from corral.services.fleet import load_fleet_source

    snapshot = load_fleet_source(fleet_file, live, context.inventory)
    for notice in snapshot.notices:
        typer.echo(notice, err=True)
    return snapshot
