"""Where a fleet comes from: a fleet file, a document sent to the API, or the live inventory.

Every planning, HA, cost and sprawl capability starts from one :class:`FleetSnapshot`,
so the CLI's ``--fleet-file F`` / ``--live`` and the REST API's request body mean the
same fleet. The live inventory is turned into the same document a fleet file holds
(:func:`live_document`), which is also what ``corral export --format fleet`` writes.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from corral import safeload
from corral.engines.planning.model import Fleet, Protection
from corral.engines.sprawl.inventory_file import Inventory as Records
from corral.engines.sprawl.model import HostRecord, VMRecord, Volume
from corral.errors import NotFoundError, ValidationError
from corral.services.fleet_format import FORMAT, parse_document

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
    from corral.inventory.views import HostView


class FleetOrigin(enum.StrEnum):
    """Where a snapshot was read from."""

    file = "file"
    document = "document"  # a parsed document, e.g. a REST request body
    live = "live"  # the live inventory's last sync


@dataclass(frozen=True)
class FleetSnapshot:
    """One fleet, seen by every engine: ``fleet`` for planning/HA, the records for cost/sprawl.

    ``vms``/``hosts``/``volumes``/``now`` are the cost and sprawl engines' inputs (the
    same fields as the inventory-file reader's ``Inventory``); ``notices`` are sentences
    to show the user (e.g. that the file is in a deprecated format), never errors.
    """

    fleet: Fleet
    vms: tuple[VMRecord, ...]
    hosts: tuple[HostRecord, ...]
    volumes: tuple[Volume, ...]
    now: datetime | None
    origin: FleetOrigin
    source: str
    notices: tuple[str, ...] = ()
    #: the document itself, for engines that read keys of their own (backup: tiers, datastores)
    document: Any = None

    @property
    def records(self) -> Records:
        """The cost/sprawl view as the inventory-file reader's ``Inventory``."""
        return Records(self.vms, self.hosts, self.volumes, self.now)


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
    """The live inventory's last sync as a snapshot (hosts never synced are left out)."""
    return parse_fleet_document(live_document(inventory), "live inventory", FleetOrigin.live)


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
    from corral.services.records import fleet_records  # the database read of VMs and volumes

    hosts = [_host_doc(h) for h in inventory.list_hosts() if _has_facts(h)]
    known = {h["name"] for h in hosts}
    vms, _, volumes = fleet_records(inventory)
    usable = [v for v in vms if v.host in known and v.vcpus > 0 and v.memory_mib > 0]
    tiers = {v.uuid: v.protection_tier for v in inventory.list_vms().items}
    seen = Counter(v.name for v in usable)
    return {
        "format": FORMAT,
        "now": inventory.clock().isoformat(),
        "hosts": hosts,
        "vms": [_vm_doc(v, seen[v.name] > 1, tiers.get(v.uuid)) for v in usable],
        "volumes": [_drop_none(_volume_doc(v)) for v in volumes if v.host in known],
    }


def _has_facts(h: HostView) -> bool:
    return bool(h.cpus and h.mhz and h.memory_mib)


def host_cores(
    cpus: int | None, sockets: int | None, cores_per_socket: int | None, threads: int | None
) -> tuple[int, int]:
    """(cores, threads per core) of a host's topology: whole cores only when it adds up, else
    each logical CPU counts as a core of one thread."""
    cpus, sockets = int(cpus or 0), int(sockets or 0)
    cores, threads = int(cores_per_socket or 0), int(threads or 0)
    if sockets * cores * threads == cpus:
        return sockets * cores, threads
    return cpus, 1


def _host_doc(h: HostView) -> dict[str, Any]:
    """A host listing as a fleet-document host; whole cores only when the topology adds up."""
    cores, threads = host_cores(h.cpus, h.sockets, h.cores_per_socket, h.threads_per_core)
    return _drop_none(
        {
            "name": h.name,
            "cores": cores,
            "threads_per_core": threads,
            "cpu_mhz": int(h.mhz or 0),
            "memory_mib": int(h.memory_mib or 0),
            "cpu_model": h.cpu_model or None,
            "features": list(h.cpu_features) or None,
        }
    )


_PROTECTIONS = frozenset(p.value for p in Protection)


def _vm_doc(v: VMRecord, duplicate: bool, tier: str | None) -> dict[str, Any]:
    return _drop_none(
        {
            "name": f"{v.name}#{v.uuid}" if duplicate else v.name,
            "uuid": v.uuid,
            "host": v.host,
            "state": v.state.value,
            "vcpus": v.vcpus,
            "memory_mib": v.memory_mib,
            "protection": tier if tier in _PROTECTIONS else None,
            "protection_tier": tier,
            "disks": [{"path": d.path, "size_gb": round(d.size_gb, 3)} for d in v.disks] or None,
            "snapshots": [
                _drop_none({"name": s.name, "created_at": _iso(s.created_at), "size_gb": s.size_gb})
                for s in v.snapshots
            ]
            or None,
            "owner": v.owner,
            "department": v.department,
            "purpose": v.purpose,
            "project": v.project,
            "environment": v.environment,
            "expiry": _iso(v.expiry),
            "tags": dict(v.tags) or None,
            "created_at": _iso(v.created_at),
            "state_since": _iso(v.state_since),
            "os": v.os,
            "licences": list(v.licences) or None,
        }
    )


def _volume_doc(v: Volume) -> dict[str, Any]:
    return {
        "path": v.path,
        "size_gb": round(v.size_gb, 3),
        "pool": v.pool,
        "host": v.host,
        "created_at": _iso(v.created_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _drop_none(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if v is not None}
