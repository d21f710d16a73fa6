"""The live inventory's hosts, VMs and volumes as entries of a ``corral-fleet/1`` document.

The live fleet (corral.services.live_capacity) writes its document with these, and
``corral export --format fleet`` writes that document: a file read back gives the
same fleet and records as the live inventory (sizes to the MB, times as ISO 8601).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from corral.engines.planning.model import Protection
from corral.engines.sprawl.model import HostRecord, VMRecord, Volume

#: Decimals of a GiB a document gives sizes in (to the MB); records are rounded the same.
DIGITS = 3
_PROTECTIONS = frozenset(p.value for p in Protection)


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


def host_doc(
    name: str,
    cores: int,
    threads: int,
    mhz: int,
    memory_mib: int,
    cpu_model: str | None,
    features: tuple[str, ...],
) -> dict[str, Any]:
    return _drop_none(
        {
            "name": name,
            "cores": cores,
            "threads_per_core": threads,
            "cpu_mhz": mhz,
            "memory_mib": memory_mib,
            "cpu_model": cpu_model or None,
            "features": list(features) or None,
        }
    )


def host_record(doc: dict[str, Any]) -> HostRecord:
    """The cost/sprawl record of a host entry (what the document reader makes of it)."""
    return HostRecord(doc["name"], doc["cores"], doc["memory_mib"], float(doc["cpu_mhz"]))


def vm_doc(v: VMRecord, tier: str | None) -> dict[str, Any]:
    return _drop_none(
        {
            "name": v.name,
            "uuid": v.uuid,
            "host": v.host,
            "state": v.state.value,
            "vcpus": v.vcpus,
            "memory_mib": v.memory_mib,
            "protection": tier if tier in _PROTECTIONS else None,
            "protection_tier": tier,
            "disks": [{"path": d.path, "size_gb": d.size_gb} for d in v.disks] or None,
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


def volume_doc(v: Volume) -> dict[str, Any]:
    return _drop_none(
        {
            "path": v.path,
            "size_gb": v.size_gb,
            "pool": v.pool,
            "host": v.host,
            "created_at": _iso(v.created_at),
        }
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _drop_none(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if v is not None}


__all__ = ["DIGITS", "host_cores", "host_doc", "host_record", "vm_doc", "volume_doc"]
