"""Storage shared by several hosts, and which VM uses each volume, judged across all hosts.

Two hosts' pools are one storage when they have the same source (an NFS export, an iSCSI
target, an RBD or LVM name) or, for local pool types, the same target path on a filesystem of
the same size (hosts that mount one shared folder at one path). A volume of a storage is in
use when a live VM on any host that sees that storage has it as a disk, a snapshot file or
anywhere in a disk's backing chain; a VM on a host that holds the same path in a storage of
its own does not count (two local disks that happen to share a name).

Pure: plain rows in, the user of each volume out. The sync stores the result.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.domain.model import PoolFacts

_MAX_CHAIN = 64


def storage_key(pool: PoolFacts) -> str:
    """The identity of the storage behind a pool, equal for every host that shares it."""
    if pool.source:
        return f"source:{pool.type}:{pool.source}"
    if pool.path:
        return f"path:{pool.type}:{os.path.normpath(pool.path)}:{pool.capacity_bytes}"
    return f"pool:{pool.uuid}"


@dataclass(frozen=True, slots=True)
class PoolRef:
    id: int
    host_id: int
    key: str
    path: str | None


@dataclass(frozen=True, slots=True)
class VolumeRef:
    id: int
    pool_id: int
    path: str
    backing_path: str | None


@dataclass(frozen=True, slots=True)
class VMRef:
    uuid: str
    host_id: int
    paths: tuple[str, ...]  # disks, their backing files, snapshot files


def vm_paths(
    disks: Sequence[Mapping[str, Any]], snapshots: Sequence[Mapping[str, Any]]
) -> tuple[str, ...]:
    """The files a VM's stored disks and snapshots name."""
    out: list[str] = []
    for d in disks:
        out += [p for p in (d.get("path"), d.get("backing_path")) if p]
    for sn in snapshots:  # an external chain: overlays and the images they froze
        out += [*sn.get("files", ()), *sn.get("frozen", ())]
    return tuple(out)


class _Index:
    """Volumes by path, and which storages each host sees."""

    def __init__(self, pools: Iterable[PoolRef], volumes: Iterable[VolumeRef]) -> None:
        self.pools = {p.id: p for p in pools}
        self.keys_of_host: dict[int, set[str]] = defaultdict(set)
        self.dirs_of_host: dict[int, list[str]] = defaultdict(list)
        for p in self.pools.values():
            self.keys_of_host[p.host_id].add(p.key)
            if p.path:
                self.dirs_of_host[p.host_id].append(os.path.normpath(p.path))
        self.at: dict[str, list[VolumeRef]] = defaultdict(list)
        for v in volumes:
            self.at[os.path.normpath(v.path)].append(v)

    def visible(self, host_id: int, path: str) -> list[VolumeRef]:
        """The volumes at ``path`` that a VM on ``host_id`` can mean."""
        out = []
        for v in self.at.get(path, ()):
            key = self.pools[v.pool_id].key
            if key in self.keys_of_host[host_id] or not self._shadowed(host_id, path):
                out.append(v)
        return out

    def _shadowed(self, host_id: int, path: str) -> bool:
        """The host has a storage of its own holding this path: the VM uses that one."""
        return any(path.startswith(d.rstrip("/") + "/") for d in self.dirs_of_host[host_id])


def attribute(
    pools: Iterable[PoolRef], volumes: Sequence[VolumeRef], vms: Iterable[VMRef]
) -> dict[int, str | None]:
    """Volume id -> UUID of a VM that uses it (None: orphaned), backing chains followed."""
    index = _Index(pools, volumes)
    users: dict[int, str | None] = {v.id: None for v in volumes}
    for vm in sorted(vms, key=lambda r: (r.host_id, r.uuid)):
        todo = [os.path.normpath(p) for p in vm.paths]
        seen: set[str] = set()
        while todo and len(seen) < _MAX_CHAIN * max(1, len(vm.paths)):
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            for vol in index.visible(vm.host_id, path):
                if users[vol.id] is None:
                    users[vol.id] = vm.uuid
                if vol.backing_path:
                    base = os.path.join(os.path.dirname(path), vol.backing_path)
                    todo.append(os.path.normpath(base))
    return users
