"""Deleting VMs and their volumes, with the guards for storage other VMs still use."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

import libvirt
from lxml import etree

from corral.errors import HypervisorError
from corral.hypervisor import domxml
from corral.hypervisor.libvirt.core import _FLAG_REFUSED, HypervisorCore, _is_active, _norm
from corral.hypervisor.uri import redact
from corral.hypervisor.xmlsafe import parse

# Tried in order: drivers that refuse a flag (the test driver knows no NVRAM or
# checkpoints) get the next, smaller set.
_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
    libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    0,
)
_MAX_BACKING_DEPTH = 32


class Storage(HypervisorCore):
    """Deletion, the shared-use guards and the backing chains they follow."""

    def delete_vm(self, uuid: str, *, delete_storage: bool = True) -> list[str] | None:
        """Destroy, delete the VM's own pool volumes, undefine; None when it is already gone.

        Every check (which volumes, whether another VM needs one) runs before the first
        change, so a refusal leaves everything as it was. Volumes go before the definition:
        a failure half-way leaves a VM that a second call finishes deleting.
        """
        with self._lock:
            dom = self._lookup(uuid, missing_ok=True)
            if dom is None:
                return None
            try:
                volumes = self._own_volumes(dom, uuid) if delete_storage else []
                persistent = bool(dom.isPersistent())
                if _is_active(dom):
                    _destroy_quietly(dom)
                deleted = [_delete_volume(vol) for vol in volumes]
                if persistent:
                    _undefine(dom)
            except libvirt.libvirtError as exc:
                raise self._error(f"delete VM {uuid}", exc) from None
            self._forget(uuid, deleted)
        return deleted

    def volumes_to_delete(self, uuid: str) -> list[str]:
        """The paths of the pool volumes ``delete_vm`` would delete; refused as it would be."""
        with self._lock:
            dom = self._lookup(uuid, missing_ok=True)
            if dom is None:
                return []
            try:
                return sorted(_norm(v.path()) for v in self._own_volumes(dom, uuid))
            except libvirt.libvirtError as exc:
                raise self._error(f"list the volumes of VM {uuid}", exc) from None

    def paths_in_use(self, exclude: str = "") -> dict[str, set[str]]:
        """Path -> names of this host's VMs (but ``exclude``) that use it, backing chains too."""
        with self._lock:
            try:
                _refresh_pools(self._conn)
                return self._volume_users(exclude)
            except libvirt.libvirtError as exc:
                raise self._error("list the storage its VMs use", exc) from None

    def _own_volumes(self, dom: libvirt.virDomain, uuid: str) -> list[libvirt.virStorageVol]:
        """The pool volumes among the VM's writable disks; refuse if another VM needs one."""
        _refresh_pools(self._conn)
        volumes: dict[str, libvirt.virStorageVol] = {}
        for disk in _disk_elements(dom):
            if disk.get("device", "disk") != "disk" or disk.find("readonly") is not None:
                continue  # install media and read-only images are shared by nature
            vol = self._volume_of(disk)
            if vol is not None:
                volumes.setdefault(_norm(vol.path()), vol)
        for snap in dom.listAllSnapshots(0):
            facts = domxml.parse_snapshot(snap.getXMLDesc(0))
            for path in (*facts.files, *facts.frozen):
                vol = self._volume_at(path)
                if vol is not None:
                    volumes.setdefault(_norm(vol.path()), vol)
        if volumes:
            self._refuse_shared(uuid, volumes)
        return list(volumes.values())

    def _refuse_shared(self, uuid: str, volumes: Mapping[str, libvirt.virStorageVol]) -> None:
        users = self._volume_users(exclude=uuid)
        for path in volumes:
            if path in users:
                names = ", ".join(sorted(users[path]))
                raise HypervisorError(
                    f"VM {uuid} was not deleted: its volume {path} is also used by VM {names} "
                    f"on {redact(self.uri)} as a disk or as the backing file of a linked clone; "
                    "delete or flatten those VMs first, or delete this one without its storage."
                )

    def _volume_users(self, exclude: str) -> dict[str, set[str]]:
        """Path -> names of the other VMs that use it as a disk or anywhere in a backing chain."""
        users: dict[str, set[str]] = {}
        for other in self._conn.listAllDomains(0):
            if other.UUIDString().lower() == exclude.lower():
                continue
            try:
                paths = self._paths_used_by(other)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # undefined since the listing: it uses nothing any more
                raise
            for path in paths:
                users.setdefault(path, set()).add(other.name())
        return users

    def _paths_used_by(self, dom: libvirt.virDomain) -> set[str]:
        paths: set[str] = set()
        for disk in _disk_elements(dom):
            vol = self._volume_of(disk)
            top = _norm(vol.path()) if vol is not None else _source_path(disk)
            if top is None:
                continue
            paths.add(top)
            paths.update(_xml_backing_chain(disk, top))
            if vol is not None:
                paths.update(self._volume_backing_chain(vol))
        return paths

    def _volume_backing_chain(self, vol: libvirt.virStorageVol) -> list[str]:
        """Backing files as the storage pools know them (qcow2 headers), top to bottom."""
        chain: list[str] = []
        current = _norm(vol.path())
        for _ in range(_MAX_BACKING_DEPTH):
            backing = parse(vol.XMLDesc(0), "storage volume XML").findtext("backingStore/path")
            if not backing:
                break
            current = _norm(os.path.join(os.path.dirname(current), backing))
            if current in chain:
                break
            chain.append(current)
            vol = self._volume_at(current)
            if vol is None:
                break
        return chain

    def _volume_of(self, disk: etree._Element) -> libvirt.virStorageVol | None:
        """The pool volume behind a disk element, or None when no pool holds it."""
        src = disk.find("source")
        if src is None:
            return None
        if disk.get("type") == "volume" and src.get("pool") and src.get("volume"):
            try:
                pool = self._conn.storagePoolLookupByName(src.get("pool"))
                return pool.storageVolLookupByName(src.get("volume"))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() in (
                    libvirt.VIR_ERR_NO_STORAGE_POOL,
                    libvirt.VIR_ERR_NO_STORAGE_VOL,
                ):
                    return None
                raise
        path = _source_path(disk)
        return self._volume_at(path) if path else None

    def _volume_at(self, path: str) -> libvirt.virStorageVol | None:
        try:
            return self._conn.storageVolLookupByPath(path)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise


def _destroy_quietly(dom: libvirt.virDomain) -> None:
    """Destroy; a guest that stopped on its own in the meantime is fine."""
    try:
        dom.destroy()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (
            libvirt.VIR_ERR_OPERATION_INVALID,
            libvirt.VIR_ERR_NO_DOMAIN,
        ):
            raise


def _undefine(dom: libvirt.virDomain) -> None:
    """Undefine with snapshot metadata, managed save and NVRAM; fewer flags if refused."""
    for flags in _UNDEFINE_FLAGS:
        try:
            if flags:
                dom.undefineFlags(flags)
            else:
                dom.undefine()
            return
        except libvirt.libvirtError as exc:
            if flags == 0 or exc.get_error_code() not in _FLAG_REFUSED:
                raise


def _delete_volume(vol: libvirt.virStorageVol) -> str:
    path: str = vol.path()
    vol.delete(0)
    return path


def _refresh_pools(conn: libvirt.virConnect) -> None:
    """Let the pools notice files created behind libvirt's back (qemu-img, copies)."""
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        with contextlib.suppress(libvirt.libvirtError):
            pool.refresh(0)


def _disk_elements(dom: libvirt.virDomain) -> list[etree._Element]:
    """Disks of the live and the persistent definition (a hot-plugged disk is in one only)."""
    docs = [dom.XMLDesc(0)]
    if dom.isActive() and dom.isPersistent():
        docs.append(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return [d for doc in docs for d in parse(doc, "domain XML").iterfind("devices/disk")]


def _source_path(disk: etree._Element) -> str | None:
    src = disk.find("source")
    if src is None:
        return None
    path = src.get("file") or src.get("dev")
    return _norm(path) if path else None


def _xml_backing_chain(disk: etree._Element, top: str) -> list[str]:
    """Backing files the domain XML itself names (<backingStore>, nested), top to bottom."""
    chain: list[str] = []
    parent_dir = os.path.dirname(top)
    store = disk.find("backingStore")
    while store is not None and len(chain) < _MAX_BACKING_DEPTH:
        path = _source_path(store)
        if path is None:
            break
        path = _norm(os.path.join(parent_dir, path))
        chain.append(path)
        parent_dir = os.path.dirname(path)
        store = store.find("backingStore")
    return chain
