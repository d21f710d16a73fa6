"""Restoring a VM from any retained restore point: as a new VM, or in place.

The point's chain (its full and every incremental up to it) is first re-hashed against the
manifests, so a corrupt repository is never restored from. Each disk is then written as one
standalone qcow2 (``qemu-img convert`` reading the chain: point-in-time), through a temporary
file renamed into place.

* As a new VM (``as_name``): on any registered host, with a new name, a new UUID and new MAC
  addresses (libvirt draws them), the disks written to ``disk_dir`` (default: the folder of
  the original disks), then started unless told not to.
* In place: the VM, on its own host, is stopped, its disks replaced, its checkpoints dropped
  (the restored disks hold no bitmaps: the next backup is a full one), and started again if
  it was running.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from corral.config import Settings
from corral.domain.backup import DOMAIN_XML, Manifest
from corral.errors import ConflictError, NotFoundError, ValidationError
from corral.hypervisor import restore as hv
from corral.services.backup_exec import HostOpener, repository
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.db import Database

VM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True, slots=True)
class Restored:
    point: str
    mode: str  # new, in-place
    host: str
    vm_name: str
    vm_uuid: str
    disks: tuple[str, ...]
    started: bool
    seconds: float


@dataclass
class Restorer:
    db: Database
    repo: Repository
    hosts: HostOpener

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> Restorer:
        return cls(db, repository(settings), HostOpener.from_settings(settings, db))

    def restore(
        self,
        point_id: str,
        *,
        host: str | None = None,
        as_name: str | None = None,
        disk_dir: Path | None = None,
        start: bool = True,
        network: str | None = None,
    ) -> Restored:
        """``network``: a copy's NICs all on this libvirt network (restore tests isolate it)."""
        if network is not None and as_name is None:
            raise ValidationError("only a copy (--as NAME) can be put on another network.")
        started = time.monotonic()
        chain = self._checked_chain(point_id)
        point = chain[-1]
        folder = self.repo.folder(point.id)
        xml = (folder / DOMAIN_XML).read_text("utf-8")
        with self.repo.vm_lock(point.vm_uuid), hv.translated(f"the restore of {point.id}"):
            if as_name is None:
                if host is not None and host != point.host and host != self._current_host(point):
                    raise ValidationError(
                        "a restore in place happens on the VM's own host; "
                        "give --as NAME to restore a copy onto another host."
                    )
                done = self._in_place(point, folder, start)
            else:
                done = self._as_new(point, folder, xml, as_name, host or point.host, disk_dir,
                                    start, network)  # fmt: skip
        result = Restored(**{**done, "seconds": round(time.monotonic() - started, 3)})
        self._record(result, point)
        return result

    def _checked_chain(self, point_id: str) -> list[Manifest]:
        chain = self.repo.chain(point_id)
        for p in chain:
            verdict = self.repo.verify(p.id)
            if not verdict.ok:
                raise ConflictError(
                    f"restore point {p.id} is damaged ({'; '.join(verdict.problems)}); "
                    "restore from another point."
                )
        return chain

    def _as_new(
        self, point: Manifest, folder: Path, xml: str, name: str, host: str,
        disk_dir: Path | None, start: bool, network: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        if not VM_NAME.match(name):
            raise ValidationError(
                "a VM name is 1-63 letters, digits, dots, dashes or underscores, "
                "starting with a letter or digit."
            )
        conn = self.hosts(host)
        try:
            if name in {d.name() for d in conn.listAllDomains(0)}:
                raise ConflictError(f"host {host} already has a VM named {name}; choose another.")
            paths = copy_disks(point, xml, name, disk_dir)
            for f in point.disks:
                hv.write_image(folder / f.name, paths[str(f.disk)])
            new_xml, new_uuid = hv.as_new_vm(xml, name, paths, network)
            dom = _define(conn, new_xml, paths)
            if start:
                dom.create()
            return {"point": point.id, "mode": "new", "host": host, "vm_name": name,
                    "vm_uuid": new_uuid, "disks": tuple(str(p) for p in paths.values()),
                    "started": start}  # fmt: skip
        finally:
            conn.close()

    def _in_place(self, point: Manifest, folder: Path, start: bool) -> dict[str, Any]:
        host = self._current_host(point)
        conn = self.hosts(host)
        try:
            dom = hv.find_domain(conn, point.vm_uuid)
            if dom is None:
                raise NotFoundError(
                    f"VM {point.vm_name} is not on host {host} any more; restore it as a new VM "
                    "with --as NAME."
                )
            live = {d.target: d.path for d in hv.file_disks(hv.inactive_xml(dom))}
            missing = [str(f.disk) for f in point.disks if f.disk not in live]
            if missing:
                raise ConflictError(
                    f"{point.vm_name} has no disk {', '.join(missing)} any more; restore it as a "
                    "new VM with --as NAME."
                )
            was_running = hv.stop(dom)
            for f in point.disks:
                hv.write_image(folder / f.name, live[str(f.disk)])
            hv.drop_checkpoints_metadata(dom)
            run = start and was_running
            if run:
                dom.create()
            return {"point": point.id, "mode": "in-place", "host": host,
                    "vm_name": dom.name(), "vm_uuid": point.vm_uuid,
                    "disks": tuple(str(live[str(f.disk)]) for f in point.disks),
                    "started": run}  # fmt: skip
        finally:
            conn.close()

    def _current_host(self, point: Manifest) -> str:
        with self.db.session() as s:
            row = s.execute(
                select(m.Host.name)
                .join(m.VM, m.VM.host_id == m.Host.id)
                .where(m.VM.uuid == point.vm_uuid)
            ).first()
        return str(row[0]) if row else point.host

    def _record(self, result: Restored, point: Manifest) -> None:
        with self.db.session() as s:
            s.add(
                m.BackupRestoreRow(
                    point_id=result.point, vm_uuid=point.vm_uuid, mode=result.mode,
                    host=result.host, vm_name=result.vm_name, new_uuid=result.vm_uuid,
                    seconds=result.seconds, restored_at=datetime.now(UTC),
                )
            )  # fmt: skip


def copy_disks(point: Manifest, xml: str, name: str, disk_dir: Path | None) -> dict[str, Path]:
    """Where a copy named ``name`` gets each of the point's disks (target: path): in
    ``disk_dir``, else beside the original disk; never a file that exists."""
    originals = {d.target: d.path for d in hv.file_disks(xml)}
    paths = {}
    for f in point.disks:
        disk = str(f.disk)
        if disk_dir is None and disk not in originals:
            raise ValidationError(
                f"restore point {point.id} has disk {disk}, which its domain XML does not "
                "name as a file; give a folder for the copy's disks (--disk-dir)."
            )
        out = (disk_dir or originals[disk].parent) / f"{name}-{disk}.qcow2"
        if out.exists():
            raise ConflictError(f"{out} exists; a restore never overwrites a file.")
        paths[disk] = out
    return paths


def _define(conn: Any, xml: str, written: dict[str, Path]) -> Any:
    """Define the copy; if libvirt refuses, the written disks go too (nothing half-made)."""
    import libvirt

    try:
        return conn.defineXML(xml)
    except libvirt.libvirtError:
        for path in written.values():
            path.unlink(missing_ok=True)
        with hv.translated("defining the restored VM"):  # a silent host: HostUnreachableError
            raise
