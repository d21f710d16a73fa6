"""What the inventory service hands to its interfaces: frozen records, not dictionaries.

The CLI, the REST API, the web pages, the demo and the other services read hosts, VMs,
events, volumes and networks through these types, so a renamed or missing field is a type
error where it is used rather than a ``KeyError`` at run time. States are the domain's enums
and times are aware datetimes; :func:`as_row` gives the JSON-ready mapping an export writes.

The device lists of a VM (``disks``, ``nics``, ``snapshot_list``) and an event's ``details``
are the JSON columns as stored: their shape is the hypervisor adapter's and the sync's, and
they are passed through unchanged.

This module imports the domain only: ``corral vms`` builds :class:`VMSummary` rows without
SQLAlchemy (corral.inventory.listing).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from corral.domain.model import HostStatus, VMState

#: A JSON column's value as stored (a device of a VM, an event's details).
JSONObject = Mapping[str, Any]


#: Each state by its stored text (a dictionary look-up: a listing maps every row's state).
_STATES: dict[str, VMState] = {s.value: s for s in VMState}


def vm_state(text: str) -> VMState:
    """A stored state as the domain's enum; a state Corral does not name is ``other``."""
    return _STATES.get(text, VMState.other)


def host_status(text: str) -> HostStatus:
    return HostStatus(text)


@dataclass(frozen=True, slots=True)
class VMSummary:
    """One VM of a listing (``corral vms``, ``GET /vms``, the export's vms table)."""

    uuid: str
    name: str
    host: str | None
    state: VMState
    vcpus: int
    memory_mib: int
    memory_max_mib: int
    disk_gib: float
    disk_bytes: int
    snapshots: int
    owner: str | None
    department: str | None
    purpose: str | None
    project: str | None
    environment: str | None
    expires_on: date | None
    protection_tier: str | None
    tags: tuple[str, ...]
    is_template: bool
    created_at: datetime
    state_since: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventView:
    """One inventory event; ``vm_name`` is the name the VM had when it happened."""

    id: int
    at: datetime
    kind: str
    vm_uuid: str | None
    vm_name: str | None
    host: str | None
    details: JSONObject


@dataclass(frozen=True, slots=True)
class VMDetail(VMSummary):
    """One VM with its devices and its history, oldest event first."""

    cpu_model: str | None
    os_type: str | None
    arch: str | None
    autostart: bool
    persistent: bool
    created_by: str | None
    disks: tuple[JSONObject, ...]
    nics: tuple[JSONObject, ...]
    snapshot_list: tuple[JSONObject, ...]
    first_seen_at: datetime
    updated_at: datetime
    history: tuple[EventView, ...]


@dataclass(frozen=True, slots=True)
class HostView:
    """A registered host and what its last sync read from it; the URI's password redacted."""

    name: str
    uri: str
    status: HostStatus
    last_sync_at: datetime | None
    last_error: str | None
    hostname: str | None
    cpu_model: str | None
    cpu_vendor: str | None
    cpu_features: tuple[str, ...]
    sockets: int | None
    cores_per_socket: int | None
    threads_per_core: int | None
    cpus: int | None
    mhz: int | None
    memory_mib: int | None
    arch: str | None
    hypervisor_type: str | None
    hypervisor_version: str | None
    libvirt_version: str | None
    has_credentials: bool


@dataclass(frozen=True, slots=True)
class VMTally:
    """How many live VMs there are: in all, in each state (those with one), without an
    owner, and past their lease."""

    total: int
    by_state: Mapping[str, int]
    no_owner: int
    lease_expired: int


@dataclass(frozen=True, slots=True)
class ListedHost(HostView):
    """A host of the host list, with how many live VMs it holds."""

    vms: int


@dataclass(frozen=True, slots=True)
class VolumeView:
    """A storage volume, once even when shared storage shows it on several hosts."""

    host: str  # the host of the VM using it, else the first host that sees it
    hosts: tuple[str, ...]
    pool: str
    name: str
    path: str | None
    format: str | None
    capacity_bytes: int
    allocation_bytes: int
    backing_path: str | None
    used_by: str | None
    used_by_name: str | None
    used_by_host: str | None
    orphaned: bool
    first_seen_at: datetime
    shared: bool


@dataclass(frozen=True, slots=True)
class NetworkView:
    """A host's virtual network and how many live VMs have a NIC on it."""

    host: str
    name: str
    active: bool
    forward_mode: str | None
    bridge: str | None
    vms: int
    uuid: str | None


def as_row(view: Any) -> dict[str, Any]:
    """A view as JSON-ready values (times in ISO 8601, enums as their value, tuples as
    lists), field by field in declaration order: the export's rows."""
    return {f.name: _jsonable(getattr(view, f.name)) for f in dataclasses.fields(view)}


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_row(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value
