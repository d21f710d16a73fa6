"""The inventory's plain data: facts observed on a hypervisor, and Corral's own metadata.

These are frozen dataclasses with no behaviour beyond derived values, so the
engines, the sync diff and the tests can build and compare them freely.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


class VMState(enum.StrEnum):
    """A VM's run state: the one enum of the inventory, the fleet file and every engine."""

    running = "running"
    paused = "paused"
    shutoff = "shutoff"
    crashed = "crashed"
    suspended = "suspended"  # managed save / pmsuspended
    other = "other"  # the hypervisor reported a state Corral does not name
    unknown = "unknown"  # nobody said (a fleet file without it, a gap in the history)

    @property
    def known(self) -> bool:
        return self not in (VMState.other, VMState.unknown)


class HostStatus(enum.StrEnum):
    ok = "ok"
    unreachable = "unreachable"
    never_synced = "never-synced"
    duplicate = "duplicate"  # the same libvirt host as another registered host


class EventKind(enum.StrEnum):
    created = "created"
    deleted = "deleted"
    started = "started"
    stopped = "stopped"
    paused = "paused"
    resumed = "resumed"
    resized = "resized"
    snapshot_taken = "snapshot-taken"
    snapshot_removed = "snapshot-removed"
    migrated = "migrated"
    renamed = "renamed"
    reappeared = "reappeared"
    metadata_changed = "metadata-changed"
    reconfigured = "reconfigured"
    host_unreachable = "host-unreachable"
    host_reachable = "host-reachable"
    # the reclamation workflow (corral.reclaim)
    reclaim_flagged = "reclaim-flagged"
    reclaim_notified = "reclaim-notified"
    reclaim_confirmed = "reclaim-confirmed"
    reclaim_extended = "reclaim-extended"
    reclaim_approved = "reclaim-approved"
    quarantined = "quarantined"
    archived = "archived"
    restored = "restored"
    reclaim_deleted = "reclaim-deleted"
    reclaim_cancelled = "reclaim-cancelled"
    # retention (corral.services.backup_loop): what an expiry run deleted
    restore_point_expired = "restore-point-expired"
    evidence_expired = "evidence-expired"


class ProtectionTier(enum.StrEnum):
    replicated = "replicated"
    restart = "restart"
    backup_only = "backup-only"
    none = "none"


class Environment(enum.StrEnum):
    prod = "prod"
    test = "test"
    dev = "dev"
    staging = "staging"
    lab = "lab"


@dataclass(frozen=True, slots=True)
class Disk:
    target: str
    device: str  # disk | cdrom | floppy | lun
    path: str | None
    format: str | None = None
    bus: str | None = None
    capacity_bytes: int | None = None
    allocation_bytes: int | None = None
    backing_path: str | None = None


@dataclass(frozen=True, slots=True)
class Nic:
    mac: str
    type: str  # network | bridge | ethernet | user | direct
    source: str | None  # network or bridge name
    model: str | None = None
    network: str | None = None  # the libvirt network it is on, whatever its type


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A VM snapshot and, when libvirt can tell, the storage it holds.

    ``kind`` is "internal" (kept inside the qcow2 image: no libvirt API gives its size, so
    ``size_bytes`` stays None), "external" (overlay files; ``files`` names them) or None when
    the snapshot XML does not say. ``frozen`` are the files an external snapshot made
    read-only (its disks' sources when taken): the chain needs them as long as it lives.
    ``size_bytes`` of an external snapshot is the allocation of its overlay files, the data
    written since it was taken — None unless every file is known.
    """

    name: str
    created_at: datetime
    state: str | None = None
    parent: str | None = None
    description: str | None = None
    kind: str | None = None
    files: tuple[str, ...] = ()
    frozen: tuple[str, ...] = ()
    size_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class OwnerMeta:
    """Corral's ownership metadata, kept in the store and in the domain's <metadata>."""

    owner: str | None = None
    department: str | None = None
    purpose: str | None = None
    project: str | None = None
    environment: str | None = None
    expires_on: date | None = None
    protection_tier: str | None = None
    created_by: str | None = None
    created_on: date | None = None
    tags: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return self == OwnerMeta()


@dataclass(frozen=True, slots=True)
class VMFacts:
    """One domain as a hypervisor reports it, at one moment."""

    uuid: str
    name: str
    state: VMState
    vcpus: int
    memory_max_mib: int
    memory_mib: int
    cpu_model: str | None = None
    os_type: str | None = None
    arch: str | None = None
    autostart: bool = False
    persistent: bool = True
    is_template: bool = False
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    snapshots: tuple[Snapshot, ...] = ()
    meta: OwnerMeta = field(default_factory=OwnerMeta)
    # The version Corral stamped into the metadata when it last wrote it (None: not stamped).
    meta_revision: int | None = None
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class HostFacts:
    hostname: str
    cpu_model: str
    cpu_vendor: str | None
    cpu_features: tuple[str, ...]
    sockets: int
    cores_per_socket: int
    threads_per_core: int
    cpus: int
    mhz: int
    memory_mib: int
    arch: str
    hypervisor_type: str
    hypervisor_version: str
    libvirt_version: str
    #: libvirt's host UUID (None when the driver gives none, as the test driver does).
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class VolumeFacts:
    name: str
    path: str
    capacity_bytes: int
    allocation_bytes: int
    format: str | None = None
    backing_path: str | None = None


@dataclass(frozen=True, slots=True)
class PoolFacts:
    name: str
    uuid: str
    type: str
    path: str | None
    active: bool
    capacity_bytes: int
    allocation_bytes: int
    available_bytes: int
    volumes: tuple[VolumeFacts, ...] = ()
    # Where a network or device pool's storage lives (hosts, export, device, name), in one
    # string: two hosts' pools with the same source are the same storage.
    source: str | None = None


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    name: str
    uuid: str
    active: bool
    bridge: str | None
    forward_mode: str | None


@dataclass(frozen=True, slots=True)
class HostInventory:
    """Everything read from one host in one pass."""

    host: HostFacts
    vms: tuple[VMFacts, ...]
    pools: tuple[PoolFacts, ...]
    networks: tuple[NetworkFacts, ...]
    unchanged: tuple[str, ...] = ()  # UUIDs whose fingerprint matched what Corral holds
