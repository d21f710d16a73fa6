"""The backup side of a fleet document (docs/fleet-format.md): disk sizes, tiers, datastores,
change rates and backup budgets, read from the same document planning and cost read."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from corral.engines.backup.model import BackupInputs, BackupVM, IOBudget
from corral.engines.backup.policy import Window, parse_window
from corral.errors import ValidationError

#: Keys the fleet format accepts for backups, on a VM, on a host, and on a datastore entry.
VM_KEYS = frozenset({"protection_tier", "datastore", "change_gib_per_day"})
HOST_KEYS = frozenset({"backup_mib_s", "backup_windows"})
DATASTORE_KEYS = frozenset({"name", "backup_mib_s", "backup_windows"})


def backup_inputs(
    document: Mapping[str, Any], source: str, default_mib_s: tuple[int, int] = (0, 0)
) -> tuple[BackupInputs, tuple[str, ...]]:
    """The planner's inputs, and the names of VMs left out (no host: nothing to plan on).

    ``default_mib_s`` (host, datastore) fill an entry's ``backup_mib_s`` when only windows are
    given; entries with neither are left to the policy's defaults.
    """
    vms, unplaced = [], []
    for i, raw in enumerate(document.get("vms") or []):
        if not isinstance(raw, Mapping):
            raise ValidationError(f"{source}: vms[{i}] must be a mapping of keys to values.")
        if not raw.get("host"):
            unplaced.append(str(raw.get("name")))
            continue
        vms.append(_vm(raw, f"{source}: vms[{i}]"))
    hosts = tuple(
        _budget(h, f"{source}: hosts[{i}]", default_mib_s[0])
        for i, h in enumerate(document.get("hosts") or [])
        if isinstance(h, Mapping) and HOST_KEYS & set(h)
    )
    stores = tuple(
        _budget(d, f"{source}: datastores[{i}]", default_mib_s[1])
        for i, d in enumerate(_datastores(document, source))
    )
    return BackupInputs(tuple(vms), hosts, stores), tuple(unplaced)


def _datastores(document: Mapping[str, Any], source: str) -> list[Mapping[str, Any]]:
    entries = document.get("datastores") or []
    if not isinstance(entries, list):
        raise ValidationError(f"{source}: 'datastores' must be a list of entries.")
    for i, d in enumerate(entries):
        where = f"{source}: datastores[{i}]"
        if not isinstance(d, Mapping) or not d.get("name"):
            raise ValidationError(f"{where} must be a mapping with a 'name'.")
    return entries


def _vm(raw: Mapping[str, Any], where: str) -> BackupVM:
    disks = raw.get("disks") or []
    size = sum(float(d.get("size_gb") or 0) for d in disks if isinstance(d, Mapping))
    change = raw.get("change_gib_per_day")
    if change is not None and (not _number(change) or change < 0):
        raise ValidationError(f"{where}.change_gib_per_day must be a number, 0 or more.")
    tier = raw.get("protection_tier") or raw.get("protection")
    return BackupVM(
        name=str(raw["name"]),
        host=str(raw["host"]),
        datastore=str(raw.get("datastore") or _local_store(str(raw["host"]), disks)),
        size_gib=size,
        tier=None if tier is None else str(tier),
        change_gib_per_day=None if change is None else float(change),
    )


def _local_store(host: str, disks: list[Any]) -> str:
    """Without a named datastore: the folder of the VM's first disk, on its host."""
    for d in disks:
        if isinstance(d, Mapping) and d.get("path"):
            return f"{host}:{posixpath.dirname(str(d['path']))}"
    return f"{host}:local"


def _budget(raw: Mapping[str, Any], where: str, default: int) -> IOBudget:
    mib_s = raw.get("backup_mib_s", default)
    if not _number(mib_s) or mib_s < 0 or int(mib_s) != mib_s:
        raise ValidationError(f"{where}.backup_mib_s must be a whole number of MiB/s, 0 or more.")
    windows = raw.get("backup_windows") or []
    if not isinstance(windows, list):
        raise ValidationError(f"{where}.backup_windows must be a list of {{hours, mib_s}}.")
    return IOBudget(str(raw["name"]), int(mib_s), tuple(_window(w, where) for w in windows))


def _window(raw: Any, where: str) -> tuple[Window, int]:
    if not isinstance(raw, Mapping) or set(raw) != {"hours", "mib_s"}:
        raise ValidationError(f"{where}.backup_windows: each is {{hours: 22:00-06:00, mib_s: N}}.")
    mib_s = raw["mib_s"]
    if not _number(mib_s) or mib_s < 0 or int(mib_s) != mib_s:
        raise ValidationError(f"{where}.backup_windows: mib_s must be a whole number, 0 or more.")
    return parse_window(raw["hours"], f"{where}.backup_windows"), int(mib_s)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
