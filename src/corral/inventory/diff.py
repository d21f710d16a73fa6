"""What changed between what Corral holds for a VM and what its host reports now.

Pure: a stored view and observed facts in, a list of changes out. The sync
service turns each change into an event row with a timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.domain.model import EventKind, VMFacts, VMState

_UP = {VMState.running}
_PAUSED = {VMState.paused}


@dataclass(frozen=True, slots=True)
class Stored:
    """The part of a stored VM the diff needs."""

    host: str | None
    name: str
    state: str
    vcpus: int
    memory_max_mib: int
    memory_mib: int
    snapshot_names: frozenset[str]
    disks: Sequence[Mapping[str, Any]]
    nics: Sequence[Mapping[str, Any]]
    meta: Mapping[str, Any]
    deleted: bool


@dataclass(frozen=True, slots=True)
class Change:
    kind: EventKind
    details: dict[str, Any] = field(default_factory=dict)


def state_changes(old: str, new: VMState) -> list[Change]:
    old_state = VMState(old) if old in VMState._value2member_map_ else VMState.other
    if old_state == new:
        return []
    details = {"from": old_state.value, "to": new.value}
    if new in _UP and old_state in _PAUSED:
        return [Change(EventKind.resumed, details)]
    if new in _UP:
        return [Change(EventKind.started, details)]
    if new in _PAUSED:
        return [Change(EventKind.paused, details)]
    if old_state in _UP | _PAUSED:
        return [Change(EventKind.stopped, details)]
    return [Change(EventKind.reconfigured, {"state": details})]


def diff_vm(
    old: Stored | None, new: VMFacts, new_host: str, meta: Mapping[str, Any]
) -> list[Change]:
    """Every change from ``old`` (None: never seen) to ``new`` observed on ``new_host``."""
    if old is None:
        return [Change(EventKind.created, {"host": new_host, "state": new.state.value})]
    changes: list[Change] = []
    if old.deleted:
        changes.append(Change(EventKind.reappeared, {"host": new_host}))
    if old.host is not None and old.host != new_host:
        changes.append(Change(EventKind.migrated, {"from": old.host, "to": new_host}))
    if old.name != new.name:  # virsh domrename: same UUID, new name
        changes.append(Change(EventKind.renamed, {"from": old.name, "to": new.name}))
    changes += state_changes(old.state, new.state)
    resized = {
        k: {"from": getattr(old, k), "to": getattr(new, k)}
        for k in ("vcpus", "memory_max_mib", "memory_mib")
        if getattr(old, k) != getattr(new, k)
    }
    if resized:
        changes.append(Change(EventKind.resized, resized))
    new_snaps = {s.name for s in new.snapshots}
    for name in sorted(new_snaps - old.snapshot_names):
        changes.append(Change(EventKind.snapshot_taken, {"snapshot": name}))
    for name in sorted(old.snapshot_names - new_snaps):
        changes.append(Change(EventKind.snapshot_removed, {"snapshot": name}))
    devices = _device_changes(old, new)
    if devices:
        changes.append(Change(EventKind.reconfigured, devices))
    meta_diff = {
        k: {"from": old.meta.get(k), "to": v} for k, v in meta.items() if old.meta.get(k) != v
    }
    if meta_diff:
        changes.append(Change(EventKind.metadata_changed, meta_diff))
    return changes


def _device_changes(old: Stored, new: VMFacts) -> dict[str, Any]:
    out: dict[str, Any] = {}
    old_disks = {d.get("target") for d in old.disks}
    new_disks = {d.target for d in new.disks}
    if old_disks != new_disks:
        out["disks"] = {
            "added": sorted(new_disks - old_disks),
            "removed": sorted(old_disks - new_disks),
        }
    old_macs = {n.get("mac") for n in old.nics}
    new_macs = {n.mac for n in new.nics}
    if old_macs != new_macs:
        out["nics"] = {"added": sorted(new_macs - old_macs), "removed": sorted(old_macs - new_macs)}
    return out
