"""Provisioning steps over libvirt: volumes by the storage API, definitions by defineXML.

Disks are made by libvirt itself (virStorageVolCreateXML for an overlay whose backing store
is the template's volume, virStorageVolCreateXMLFrom for a full copy) and the cloud-init
seed is written with virStorageVolUpload, so Corral never runs qemu-img or touches a host's
files directly: the same code works on a remote host.
"""

from __future__ import annotations

import contextlib

import libvirt
from lxml import etree

from corral.errors import NotFoundError
from corral.hypervisor.libvirt.core import HypervisorCore
from corral.hypervisor.provision import Upload, VolumeInfo
from corral.hypervisor.uri import redact
from corral.hypervisor.xmlsafe import parse, to_string

UPLOAD_CHUNK = 256 * 1024
_UNSUPPORTED = frozenset({libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED})


def _volume_xml(
    name: str,
    capacity_bytes: int,
    fmt: str,
    backing: VolumeInfo | None = None,
    allocation: int | None = None,
) -> str:
    """A volume definition; ``allocation`` None lets libvirt decide (a copy: the data)."""
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity_bytes)
    if allocation is not None:
        etree.SubElement(root, "allocation", unit="bytes").text = str(allocation)
    etree.SubElement(etree.SubElement(root, "target"), "format", type=fmt)
    if backing is not None:
        store = etree.SubElement(root, "backingStore")
        etree.SubElement(store, "path").text = backing.path
        etree.SubElement(store, "format", type=backing.format or "raw")
    return to_string(root)


def _info(pool: str, vol: libvirt.virStorageVol) -> VolumeInfo:
    root = parse(vol.XMLDesc(0), "storage volume XML")
    fmt = root.find("target/format")
    return VolumeInfo(
        pool=pool,
        name=vol.name(),
        path=vol.path(),
        capacity_bytes=int(vol.info()[1]),
        format=fmt.get("type") if fmt is not None else None,
    )


def _grow(
    pool: libvirt.virStoragePool, vol: libvirt.virStorageVol, capacity_bytes: int
) -> libvirt.virStorageVol:
    """A copy keeps its source's size on a real host (libvirt 9 converts, it does not resize,
    and reports the asked-for size until the pool is refreshed): grow it to the size asked
    for, or delete it, so the step makes the whole disk or nothing."""
    try:
        pool.refresh(0)
        vol = pool.storageVolLookupByName(vol.name())
        if int(vol.info()[1]) < capacity_bytes:
            vol.resize(capacity_bytes, 0)
        return vol
    except libvirt.libvirtError:
        vol.delete(0)
        raise


class Provisioning(HypervisorCore):
    """The :class:`corral.hypervisor.provision.Provisioner` steps of a libvirt host."""

    def volume_info(self, pool: str, name: str) -> VolumeInfo | None:
        with self._lock:
            vol = self._find_volume(pool, name)
            try:
                return None if vol is None else _info(pool, vol)
            except libvirt.libvirtError as exc:
                raise self._error(f"read volume {name} of pool {pool}", exc) from None

    def clone_volume(
        self, pool: str, name: str, base: VolumeInfo, capacity_bytes: int, *, linked: bool
    ) -> VolumeInfo:
        with self._lock:
            target = self._pool(pool)
            try:
                if linked:
                    vol = target.createXML(_volume_xml(name, capacity_bytes, "qcow2", base, 0), 0)
                else:
                    source = self._pool(base.pool).storageVolLookupByName(base.name)
                    vol = target.createXMLFrom(
                        _volume_xml(name, capacity_bytes, "qcow2"), source, 0
                    )
                    vol = _grow(target, vol, capacity_bytes)
                info = _info(pool, vol)
            except libvirt.libvirtError as exc:
                raise self._error(f"create volume {name} in pool {pool}", exc) from None
            self._write_back_volume(pool, vol)
            return info

    def upload_volume(self, pool: str, name: str, data: bytes) -> Upload:
        with self._lock:
            target = self._pool(pool)
            try:
                vol = target.createXML(_volume_xml(name, len(data), "raw", None, len(data)), 0)
            except libvirt.libvirtError as exc:
                raise self._error(f"create volume {name} in pool {pool}", exc) from None
            try:
                written = self._upload(vol, data)
                info = _info(pool, vol)
            except libvirt.libvirtError as exc:
                vol.delete(0)  # the step leaves nothing behind when it fails
                raise self._error(f"upload volume {name} to pool {pool}", exc) from None
            self._write_back_volume(pool, vol)
            return Upload(info, written)

    def _upload(self, vol: libvirt.virStorageVol, data: bytes) -> bool:
        stream = self._conn.newStream(0)
        try:
            vol.upload(stream, 0, len(data), 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in _UNSUPPORTED:
                return False
            raise
        try:
            for offset in range(0, len(data), UPLOAD_CHUNK):
                chunk = data[offset : offset + UPLOAD_CHUNK]
                while chunk:
                    sent = stream.send(chunk)
                    chunk = chunk[sent:]
            stream.finish()
        except libvirt.libvirtError:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            raise
        return True

    def delete_volume(self, pool: str, name: str) -> bool:
        with self._lock:
            vol = self._find_volume(pool, name)
            if vol is None:
                return False
            try:
                path = vol.path()
                vol.delete(0)
            except libvirt.libvirtError as exc:
                raise self._error(f"delete volume {name} of pool {pool}", exc) from None
            self._forget("", [path])
            return True

    def domain_named(self, name: str) -> str | None:
        with self._lock:
            try:
                for dom in self._conn.listAllDomains(0):
                    if dom.name() == name:
                        return str(dom.UUIDString()).lower()
            except libvirt.libvirtError as exc:
                raise self._error("list domains", exc) from None
            return None

    def define_domain(self, xml: str) -> str:
        with self._lock:
            try:
                dom = self._conn.defineXML(xml)
            except libvirt.libvirtError as exc:
                raise self._error("define the new VM", exc) from None
            self._write_back(dom)
            return str(dom.UUIDString()).lower()

    # -- helpers --------------------------------------------------------------
    def _pool(self, name: str) -> libvirt.virStoragePool:
        try:
            pool = self._conn.storagePoolLookupByName(name)
            if not pool.isActive():
                raise NotFoundError(f"storage pool {name} on {redact(self.uri)} is not active.")
            return pool
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise NotFoundError(
                    f"host {redact(self.uri)} has no storage pool named {name!r}."
                ) from None
            raise self._error(f"look up storage pool {name}", exc) from None

    def _find_volume(self, pool: str, name: str) -> libvirt.virStorageVol | None:
        target = self._pool(pool)
        with contextlib.suppress(libvirt.libvirtError):
            target.refresh(0)  # a pool that cannot refresh still lists what it knew
        try:
            return target.storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise self._error(f"look up volume {name} of pool {pool}", exc) from None


__all__ = ["Provisioning"]
