"""Conversions between domain dataclasses and store rows, and the typed views served out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from corral.domain.model import OwnerMeta, VMFacts
from corral.hypervisor.uri import redact
from corral.inventory.views import (
    EventView,
    HostView,
    ListedHost,
    VMDetail,
    VMSummary,
    host_status,
    vm_state,
)
from corral.store import models as m

META_FIELDS = (
    "owner",
    "department",
    "purpose",
    "project",
    "environment",
    "expires_on",
    "protection_tier",
    "created_by",
    "tags",
)


def meta_to_columns(meta: OwnerMeta) -> dict[str, Any]:
    cols: dict[str, Any] = {k: getattr(meta, k) for k in META_FIELDS if k != "tags"}
    cols["tags"] = sorted(meta.tags)
    return cols


def row_meta(row: m.VM) -> dict[str, Any]:
    return {k: (list(row.tags or []) if k == "tags" else getattr(row, k)) for k in META_FIELDS}


def row_to_meta(row: m.VM) -> OwnerMeta:
    return OwnerMeta(
        owner=row.owner,
        department=row.department,
        purpose=row.purpose,
        project=row.project,
        environment=row.environment,
        expires_on=row.expires_on,
        protection_tier=row.protection_tier,
        created_by=row.created_by,
        created_on=row.created_at.date() if row.created_at else None,
        tags=tuple(row.tags or ()),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


_SHAPES: dict[type, tuple[Callable[[Any], Any], tuple[str, ...], tuple[str, ...]]] = {}


def _shape(cls: type) -> tuple[Callable[[Any], Any], tuple[str, ...], tuple[str, ...]]:
    """A device class's field getter, its field names and those whose values need
    ``_jsonable`` (dates and tuples, judged by the declared type)."""
    shape = _SHAPES.get(cls)
    if shape is None:
        names = tuple(f.name for f in fields(cls))
        convert = tuple(
            f.name for f in fields(cls) if any(t in str(f.type) for t in ("date", "tuple"))
        )
        get = attrgetter(*names)
        one = len(names) == 1  # attrgetter of one name answers the value, not a tuple
        shape = _SHAPES[cls] = ((lambda i: (get(i),)) if one else get, names, convert)
    return shape


def _plain(item: Any) -> dict[str, Any]:
    """A flat device dataclass (disk, NIC, snapshot) as JSON-ready values; quicker than
    ``asdict``, which deep-copies, and this runs for every VM of a first sync."""
    get, names, convert = _shape(type(item))
    out = dict(zip(names, get(item), strict=True))
    for k in convert:
        out[k] = _jsonable(out[k])
    return out


def facts_columns(facts: VMFacts) -> dict[str, Any]:
    """Columns of a VM row that come straight from the hypervisor."""
    disks = [_plain(d) for d in facts.disks]
    return {
        "name": facts.name,
        "state": facts.state.value,
        "vcpus": facts.vcpus,
        "memory_max_mib": facts.memory_max_mib,
        "memory_mib": facts.memory_mib,
        "cpu_model": facts.cpu_model,
        "os_type": facts.os_type,
        "arch": facts.arch,
        "autostart": facts.autostart,
        "persistent": facts.persistent,
        "is_template": facts.is_template,
        "disks": disks,
        "nics": [_plain(n) for n in facts.nics],
        "snapshots": [_plain(s) for s in facts.snapshots],
        "snapshot_count": len(facts.snapshots),
        "disk_bytes": sum(d.capacity_bytes or 0 for d in facts.disks if d.device == "disk"),
        "fingerprint": facts.fingerprint,
    }


def vm_summary(row: m.VM, host_name: str | None) -> VMSummary:
    """The flat view of a VM used by every listing (CLI, API, export)."""
    disk_bytes = row.disk_bytes or 0
    return VMSummary(
        uuid=row.uuid,
        name=row.name,
        host=host_name,
        state=vm_state(row.state),
        vcpus=row.vcpus,
        memory_mib=row.memory_mib,
        memory_max_mib=row.memory_max_mib,
        disk_gib=round(disk_bytes / 1024**3, 1),
        disk_bytes=disk_bytes,
        snapshots=row.snapshot_count,
        owner=row.owner,
        department=row.department,
        purpose=row.purpose,
        project=row.project,
        environment=row.environment,
        expires_on=row.expires_on,
        protection_tier=row.protection_tier,
        tags=tuple(row.tags or ()),
        is_template=row.is_template,
        created_at=row.created_at,
        state_since=row.state_since,
        deleted_at=row.deleted_at,
    )


def vm_detail(row: m.VM, host_name: str | None, history: tuple[EventView, ...]) -> VMDetail:
    summary = vm_summary(row, host_name)
    return VMDetail(
        **{f.name: getattr(summary, f.name) for f in fields(VMSummary)},
        cpu_model=row.cpu_model,
        os_type=row.os_type,
        arch=row.arch,
        autostart=row.autostart,
        persistent=row.persistent,
        created_by=row.created_by,
        disks=tuple(row.disks or ()),
        nics=tuple(row.nics or ()),
        snapshot_list=tuple(row.snapshots or ()),
        first_seen_at=row.first_seen_at,
        updated_at=row.updated_at,
        history=history,
    )


def host_view(row: m.Host) -> HostView:
    return HostView(**_host_fields(row))


def listed_host(row: m.Host, vms: int) -> ListedHost:
    return ListedHost(**_host_fields(row), vms=vms)


def _host_fields(row: m.Host) -> dict[str, Any]:
    return {
        "name": row.name,
        "uri": redact(row.uri),
        "status": host_status(row.status),
        "last_sync_at": row.last_sync_at,
        "last_error": row.last_error,
        "hostname": row.hostname,
        "cpu_model": row.cpu_model,
        "cpu_vendor": row.cpu_vendor,
        "cpu_features": tuple(row.cpu_features or ()),
        "sockets": row.sockets,
        "cores_per_socket": row.cores_per_socket,
        "threads_per_core": row.threads_per_core,
        "cpus": row.cpus,
        "mhz": row.mhz,
        "memory_mib": row.memory_mib,
        "arch": row.arch,
        "hypervisor_type": row.hypervisor_type,
        "hypervisor_version": row.hypervisor_version,
        "libvirt_version": row.libvirt_version,
        "has_credentials": row.secret is not None,
    }
