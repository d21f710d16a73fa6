"""The one fleet file format (``format: corral-fleet/1``), and the two older formats it replaces.

A fleet document describes hosts, VMs and unattached volumes once; planning and HA
read the capacity side of it (a :class:`~corral.engines.planning.model.Fleet`),
cost and sprawl read the inventory side (VM, host and volume records). Each entry
is split by key into the two engine inputs and validated by each engine's own
strict reader, so an error names its place (``vms[3].memory_mib ...``).

The documented format is in docs/fleet-format.md. Files without the ``format``
line are read the old way (the planning fleet file, or the cost/sprawl inventory
file) with a one-line deprecation notice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.engines.backup.fleetdoc import DATASTORE_KEYS, HOST_KEYS, VM_KEYS
from corral.engines.planning.model import (
    VM,
    Fleet,
    Host,
    PowerState,
    fleet_from_mapping,
    fleet_from_records,
)
from corral.engines.sprawl.inventory_file import Inventory, parse_inventory
from corral.engines.sprawl.model import HostRecord, VMRecord, VMState
from corral.errors import ValidationError

FORMAT = "corral-fleet/1"
DOCS = "docs/fleet-format.md"

_TOP_KEYS = frozenset(
    {"format", "now", "settings", "profiles", "hosts", "vms", "volumes", "datastores"}
)
_HOST_PLANNING = frozenset(
    {"name", "cores", "cpu_mhz", "memory_mib", "threads_per_core", "cpu_model", "features"}
    | {"failure_domains", "labels"}
)
_HOST_RECORD = frozenset({"name", "cores", "memory_mib", "licences"})
_VM_PLANNING = frozenset(
    {"name", "host", "vcpus", "memory_mib", "cpu_reservation_mhz", "memory_reservation_mib"}
    | {"memory_overhead_mib", "protection", "priority", "anti_affinity", "affinity"}
    | {"required_features", "cpu_model", "profile"}
)
_VM_RECORD = frozenset(
    {"uuid", "name", "host", "state", "vcpus", "memory_mib", "disks", "snapshots", "owner"}
    | {"department", "purpose", "project", "environment", "expiry", "tags", "created_at"}
    | {"state_since", "os", "licences"}
)
#: Inventory states whose VM holds its host's CPU and memory (a planner counts it).
HOLDING_STATES = frozenset({VMState.running, VMState.paused, VMState.crashed})


def parse_document(data: Any, source: str) -> tuple[Fleet, Inventory, str | None]:
    """Both views of a parsed fleet document, and a deprecation notice for an old format.

    Returns ``(fleet, records, notice)``: the planning fleet, the cost/sprawl records
    and ``None`` for a ``corral-fleet/1`` document, else one sentence to show the user.
    """
    if isinstance(data, Mapping) and "format" in data:
        if data["format"] != FORMAT:
            raise ValidationError(
                f"{source}: format {data['format']!r} is unknown; this Corral reads {FORMAT}."
            )
        return *_parse_current(data, source), None
    if _looks_like_inventory(data):
        records = parse_inventory(data, source)
        return fleet_from_inventory(records), records, _notice(source, "cost/sprawl inventory")
    fleet = fleet_from_mapping(data, source=source)
    return fleet, inventory_from_fleet(fleet), _notice(source, "planning fleet")


def _notice(source: str, old: str) -> str:
    return (
        f"warning: {source} is an old {old} file, deprecated; convert it to {FORMAT} "
        f"(see {DOCS}) - a later release will stop reading the old formats."
    )


def _looks_like_inventory(data: Any) -> bool:
    if isinstance(data, list):
        return True
    if not isinstance(data, Mapping):
        return False
    vms, hosts = data.get("vms") or [], data.get("hosts")
    return (
        "hosts" not in data
        or bool({"volumes", "now"} & set(data))
        or any(isinstance(v, Mapping) and "uuid" in v for v in vms)
        or any(isinstance(h, Mapping) and "core_mhz" in h for h in hosts or [])
    )


def _parse_current(data: Mapping[str, Any], source: str) -> tuple[Fleet, Inventory]:
    _known(data, _TOP_KEYS, source)
    hosts, vms = _list(data, "hosts", source), _list(data, "vms", source)
    for i, h in enumerate(hosts):
        _known(h, _HOST_PLANNING | _HOST_RECORD | HOST_KEYS, f"{source}: hosts[{i}]")
    for i, v in enumerate(vms):
        _known(v, _VM_PLANNING | _VM_RECORD | VM_KEYS, f"{source}: vms[{i}]")
    for i, d in enumerate(_list(data, "datastores", source)):
        _known(d, DATASTORE_KEYS, f"{source}: datastores[{i}]")
    plan = {
        "settings": data.get("settings"),
        "profiles": data.get("profiles"),
        "hosts": [_pick(h, _HOST_PLANNING) for h in hosts],
        "vms": [
            {**_pick(v, _VM_PLANNING), "state": _power(v, i, source)} for i, v in enumerate(vms)
        ],
    }
    records = {
        "now": data.get("now"),
        "volumes": data.get("volumes") or [],
        "hosts": [_host_record(h) for h in hosts],
        "vms": [{"uuid": v.get("name"), **_pick(v, _VM_RECORD)} for v in vms],
    }
    fleet = fleet_from_mapping(plan, source=source)
    return fleet, parse_inventory(records, source)


def _known(entry: Any, keys: frozenset[str], where: str) -> None:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where} must be a mapping of keys to values.")
    unknown = sorted(k for k in entry if k not in keys and not str(k).startswith(("x-", "x_")))
    if unknown:
        raise ValidationError(
            f"{where}: unknown key {unknown[0]!r}; remove it (or name it x-{unknown[0]})."
        )


def _list(data: Mapping[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ValidationError(f"{source}: '{key}' must be a list of entries.")
    return value


def _pick(entry: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k in keys}


def _host_record(h: Mapping[str, Any]) -> dict[str, Any]:
    rec = _pick(h, _HOST_RECORD)
    if h.get("cpu_mhz") is not None:
        rec["core_mhz"] = h["cpu_mhz"]
    return rec


def _power(vm: Mapping[str, Any], i: int, source: str) -> str:
    raw = vm.get("state", VMState.running.value)
    try:
        state = VMState(raw)
    except ValueError:
        allowed = "|".join(s.value for s in VMState)
        raise ValidationError(f"{source}: vms[{i}].state must be one of {allowed}.") from None
    return PowerState.running if state in HOLDING_STATES else PowerState.shutoff


def inventory_from_fleet(fleet: Fleet) -> Inventory:
    """Cost/sprawl records of a planning-only fleet: the VM's name stands in for its UUID."""
    state = {PowerState.running: VMState.running, PowerState.shutoff: VMState.shutoff}
    return Inventory(
        vms=tuple(
            VMRecord(v.name, v.name, v.host, state[v.state], v.vcpus, v.memory_mib)
            for v in fleet.vms
        ),
        hosts=tuple(
            HostRecord(h.name, h.cores, h.memory_mib, float(h.cpu_mhz)) for h in fleet.hosts
        ),
    )


def fleet_from_inventory(records: Inventory) -> Fleet:
    """The planning fleet of cost/sprawl records: hosts without CPU figures are left out."""
    hosts = tuple(
        Host(h.name, h.cores, int(h.core_mhz), h.memory_mib)
        for h in records.hosts
        if h.cores > 0 and h.memory_mib > 0 and h.core_mhz
    )
    known = {h.name for h in hosts}
    vms = tuple(
        VM(
            v.name,
            v.vcpus,
            v.memory_mib,
            host=v.host,
            state=PowerState.running if v.state in HOLDING_STATES else PowerState.shutoff,
        )
        for v in records.vms
        if v.host in known and v.vcpus > 0 and v.memory_mib > 0
    )
    return fleet_from_records([], []).with_hosts(hosts).with_vms(vms)
