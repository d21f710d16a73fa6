"""Read a plain inventory file (YAML or JSON) into VM, host and volume records.

Shape: either a list of VM records, or a mapping with ``vms`` and optionally
``hosts``, ``volumes`` and ``now`` (the moment the snapshot was taken). Field
names are those of VMRecord/HostRecord/Volume. Unknown keys are refused with
their place named; a date without a time zone is taken as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from corral import safeload
from corral.engines.sprawl.model import HostRecord, Snapshot, VMRecord, Volume
from corral.errors import ValidationError

_CONFIG = ConfigDict(extra="forbid")
_VMS = TypeAdapter(list[VMRecord], config=_CONFIG)
_HOSTS = TypeAdapter(list[HostRecord], config=_CONFIG)
_VOLUMES = TypeAdapter(list[Volume], config=_CONFIG)
_NOW = TypeAdapter(datetime)
_TOP_KEYS = {"vms", "hosts", "volumes", "now"}


@dataclass(frozen=True)
class Inventory:
    vms: tuple[VMRecord, ...]
    hosts: tuple[HostRecord, ...] = ()
    volumes: tuple[Volume, ...] = ()
    now: datetime | None = None


def load_inventory(path: Path) -> Inventory:
    """The inventory in ``path`` (.json, or YAML otherwise)."""
    data = safeload.load_file(path, "inventory file", ValidationError)
    return parse_inventory(data, str(path))


def parse_inventory(data: Any, source: str = "inventory") -> Inventory:
    """Validate already-parsed data into records; nothing is returned half-done."""
    if isinstance(data, list):
        data = {"vms": data}
    if not isinstance(data, dict) or "vms" not in data:
        raise ValidationError(f"{source} must be a list of VMs or a mapping with a 'vms' list.")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ValidationError(f"{source}: unknown top-level key '{unknown[0]}'; remove it.")
    vms = _validate(_VMS, data.get("vms") or [], source, "vms")
    hosts = _validate(_HOSTS, data.get("hosts") or [], source, "hosts")
    volumes = _validate(_VOLUMES, data.get("volumes") or [], source, "volumes")
    now = _validate(_NOW, data["now"], source, "now") if data.get("now") else None
    _check_numbers(vms, source)
    return Inventory(
        vms=tuple(_aware_vm(v) for v in vms),
        hosts=tuple(hosts),
        volumes=tuple(_aware_volume(v) for v in volumes),
        now=_aware(now),
    )


def _validate(adapter: TypeAdapter[Any], value: Any, source: str, key: str) -> Any:
    try:
        return adapter.validate_python(value)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join([key, *(str(p) for p in err["loc"])])
        if err["type"] == "unexpected_keyword_argument":
            raise ValidationError(f"{source}: unknown key '{where}'; remove it.") from exc
        msg = f"{source}: '{where}' is invalid ({err['msg']}); fix the value."
        raise ValidationError(msg) from exc


def _check_numbers(vms: list[VMRecord], source: str) -> None:
    for i, vm in enumerate(vms):
        sizes = [d.size_gb for d in vm.disks] + [s.size_gb or 0.0 for s in vm.snapshots]
        if vm.vcpus < 0 or vm.memory_mib < 0 or any(x < 0 for x in sizes):
            raise ValidationError(f"{source}: vms.{i} ({vm.name}) has a negative size; fix it.")


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _aware_vm(vm: VMRecord) -> VMRecord:
    snaps = tuple(replace(s, created_at=_aware(s.created_at)) for s in vm.snapshots)
    return replace(
        vm,
        snapshots=snaps,
        expiry=_aware(vm.expiry),
        created_at=_aware(vm.created_at),
        state_since=_aware(vm.state_since),
    )


def _aware_volume(vol: Volume) -> Volume:
    return replace(vol, created_at=_aware(vol.created_at))


__all__ = ["Inventory", "Snapshot", "load_inventory", "parse_inventory"]
