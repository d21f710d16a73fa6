"""Where a fleet comes from: a fleet file, a document sent to the API, or the live inventory.

Every planning, HA, cost and sprawl capability starts from one :class:`FleetSnapshot`,
so the CLI's ``--fleet-file F`` / ``--live`` and the REST API's request body mean the
same fleet. The live inventory is turned into the same document a fleet file holds
(:func:`live_document`), which is also what ``corral export --format fleet`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from corral import safeload
from corral.errors import NotFoundError, ValidationError
from corral.services.fleet_entries import host_cores
from corral.services.fleet_format import FORMAT, parse_document
from corral.services.fleet_snapshot import FleetOrigin, FleetSnapshot
from corral.services.live_capacity import shared_fleet

__all__ = [
    "FORMAT",
    "FleetOrigin",
    "FleetSnapshot",
    "host_cores",
    "live_document",
    "live_fleet",
    "load_fleet_source",
    "parse_fleet_document",
    "read_fleet_file",
    "write_fleet_file",
]

if TYPE_CHECKING:
    from corral.inventory.service import Inventory


def load_fleet_source(
    fleet_file: Path | None,
    live: bool,
    inventory: Inventory | Callable[[], Inventory] | None = None,
) -> FleetSnapshot:
    """The fleet of ``--fleet-file F`` or of ``--live`` (exactly one), for every engine.

    Returns a :class:`FleetSnapshot`: the planning ``Fleet`` plus the cost/sprawl records
    of the same hosts and VMs. ``inventory`` (the service, or a function opening it) is
    used only for ``live``. Raises ValidationError unless exactly one source is given.
    """
    if live == (fleet_file is not None):
        raise ValidationError("Give exactly one of --fleet-file FILE or --live.")
    if fleet_file is not None:
        return read_fleet_file(fleet_file)
    if inventory is None:
        raise ValidationError("The live inventory is not available here; give a fleet file.")
    return live_fleet(inventory() if callable(inventory) else inventory)


def read_fleet_file(path: Path) -> FleetSnapshot:
    """The snapshot in a YAML or JSON fleet file (any of the three formats Corral reads)."""
    if not path.is_file():
        raise NotFoundError(
            f"Fleet file {path} does not exist; give the path of a YAML or JSON file."
        )
    data = safeload.load_file(path, "fleet file", ValidationError)  # bounded: no YAML bombs
    return parse_fleet_document(data, str(path), FleetOrigin.file)


def parse_fleet_document(
    data: Any, source: str = "fleet", origin: FleetOrigin = FleetOrigin.document
) -> FleetSnapshot:
    """The snapshot of an already-parsed fleet document (a REST body, a loaded file)."""
    fleet, records, notice = parse_document(data, source)
    return FleetSnapshot(
        fleet=fleet,
        vms=records.vms,
        hosts=records.hosts,
        volumes=records.volumes,
        now=records.now,
        origin=origin,
        source=source,
        notices=(notice,) if notice else (),
        document=data,
    )


def live_fleet(inventory: Inventory) -> FleetSnapshot:
    """The live inventory's last sync as a snapshot (hosts never synced are left out), read
    with column queries by the process's one reader of this inventory
    (corral.services.live_capacity): again only where the inventory changed since."""
    return shared_fleet(inventory).snapshot()


def write_fleet_file(inventory: Inventory, path: Path) -> Path:
    """Write the live inventory as a ``corral-fleet/1`` file (JSON for .json, else YAML)."""
    doc = live_document(inventory)
    if path.suffix.lower() == ".json":
        text = json.dumps(doc, indent=2) + "\n"
    else:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def live_document(inventory: Inventory) -> dict[str, Any]:
    """The live inventory as a ``corral-fleet/1`` document of plain values.

    Hosts without CPU and memory figures (never synced) are left out, and so are
    their VMs and VMs without sizes; templates and deleted VMs are not in it. A VM
    name seen twice gets ``#uuid`` appended so names stay unique.
    """
    document: dict[str, Any] = live_fleet(inventory).document
    return document
