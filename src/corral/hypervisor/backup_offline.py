"""Backups of a VM that is shut off: its qcow2 disks read with QEMU's tools, not libvirt's API.

libvirt's backup API needs a running domain, yet a stopped VM still has an RPO. Its disks are
read through ``qemu-nbd --read-only``, which holds QEMU's image lock for the whole copy: a
start of the VM meanwhile fails on that lock (and the copy is never of a disk being written),
and a VM that started just before makes the export fail, so nothing is copied.

The chain is the one the online backups use (measured on these hosts, see
../shared/notes/backup-ha.md and the facts below):

* a cleanly stopped QEMU writes each checkpoint's bitmap into the qcow2 (``qemu-img info``
  lists it, flag ``auto``); a crashed one leaves none, or one flagged ``in-use`` (not to be
  trusted): then the backup is full, with that reason;
* an incremental copies the clusters the previous checkpoint's bitmap marks: ``qemu-nbd -B``
  exports the bitmap, ``qemu-img map`` over ``x-dirty-bitmap`` lists the dirty extents (as
  ``"data": false``), and each is copied into the new file through raw windows at its offset;
* the next checkpoint's bitmap is added to the disk BEFORE the copy (so no write can slip
  between the copy and the bitmap) and libvirt learns the checkpoint by REDEFINE (it needs a
  ``creationTime``); libvirt cannot delete a checkpoint of an inactive domain, so old ones
  are dropped as metadata and their bitmaps removed with ``qemu-img bitmap --remove``.

qemu tools run with argument lists, never a shell; XML goes through lxml.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from corral.errors import ConflictError, HypervisorError
from corral.hypervisor.backup import Consistency, DiskCopy, FullBackup, RestorePoint

QEMU_TIMEOUT_S = 3600
EXPORT_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class OfflineDisk:
    target: str  # vda
    source: Path  # the VM's disk
    out: Path  # the restore point's file


def offline_backup(
    dom: Any, disks: Sequence[OfflineDisk], checkpoint: str, *, since: str | None = None
) -> RestorePoint:
    """Back up the disks of stopped ``dom``: an incremental since checkpoint ``since`` when
    every disk still holds its bitmap intact, else a full one (with the reason when one was
    asked for). ConflictError when the VM runs or starts before the copy holds the lock."""
    started = time.monotonic()
    _refuse_running(dom)
    broken = _broken_bitmap(disks, since) if since else None
    incremental = since is not None and broken is None
    try:
        for d in disks:
            _add_bitmap(d.source, checkpoint)
        with _exports(disks, since if incremental else None) as sockets:
            _refuse_running(dom)  # it could not have started after the lock: checked once more
            for d, socket in zip(disks, sockets, strict=True):
                if incremental:
                    _copy_dirty(d, socket, str(since))
                else:
                    _copy_all(d, socket)
                _qemu_img("check", "-q", "-f", "qcow2", str(d.out))
    except (HypervisorError, ConflictError):
        with contextlib.suppress(HypervisorError, ConflictError):
            remove_bitmaps([d.source for d in disks], [checkpoint])
        raise
    copies = tuple(DiskCopy(d.target, d.out, d.out.stat().st_size) for d in disks)
    _redefine(dom, checkpoint, [d.target for d in disks])
    taken = FullBackup(checkpoint, copies, time.monotonic() - started, _stopped_how(dom))
    fallback = f"{broken}: a new full backup starts the chain" if broken else None
    return RestorePoint(taken, incremental, fallback)


def remove_bitmaps(sources: Sequence[Path], names: Sequence[str]) -> None:
    """Drop the named bitmaps from stopped disks (the checkpoints libvirt forgot)."""
    for source in sources:
        with contextlib.suppress(HypervisorError, ConflictError):  # a leftover costs only space
            present = {b["name"] for b in _bitmaps(source)}
            for name in names:
                if name in present:
                    _qemu_img("bitmap", "--remove", "-f", "qcow2", str(source), name)


def _stopped_how(dom: Any) -> Consistency:
    """A VM shut down from inside left its filesystems clean; any other stop, a crash."""
    import libvirt

    _, reason = dom.state()
    if reason == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN:
        return Consistency("application", "copied offline after a clean shutdown")
    return Consistency("crash", f"copied offline; the VM stopped without a clean shutdown "
                                f"(libvirt shut-off reason {reason})")  # fmt: skip


def _refuse_running(dom: Any) -> None:
    if dom.isActive():
        raise ConflictError(f"{dom.name()} is running now; the next run backs it up online.")


def _bitmaps(source: Path) -> list[dict[str, Any]]:
    done = _qemu_img("info", "--output=json", "-f", "qcow2", str(source))
    info = json.loads(done.stdout)
    found: list[dict[str, Any]] = info.get("format-specific", {}).get("data", {}).get("bitmaps", [])
    return found


def _broken_bitmap(disks: Sequence[OfflineDisk], since: str | None) -> str | None:
    """Why the bitmap of ``since`` cannot serve an incremental, or None when every disk has it."""
    for d in disks:
        bitmap = next((b for b in _bitmaps(d.source) if b["name"] == since), None)
        if bitmap is None:
            return f"bitmap {since} is missing from {d.target} (the VM crashed or was moved)"
        if "in-use" in bitmap.get("flags", []):
            return f"bitmap {since} of {d.target} is inconsistent (QEMU did not close it cleanly)"
    return None


def _add_bitmap(source: Path, name: str) -> None:
    """The next checkpoint's bitmap, recording every write from now on (before the copy)."""
    _qemu_img("bitmap", "--add", "-f", "qcow2", str(source), name)


@contextlib.contextmanager
def _exports(disks: Sequence[OfflineDisk], bitmap: str | None) -> Iterator[list[str]]:
    """A read-only NBD export of each disk (holding its image lock), with ``bitmap`` exposed."""
    with tempfile.TemporaryDirectory(prefix="corral-nbd-") as folder:
        procs: list[subprocess.Popen[bytes]] = []
        sockets = []
        try:
            for i, d in enumerate(disks):
                socket = f"{folder}/{i}.sock"
                args = ["qemu-nbd", "-r", "-t", "-f", "qcow2", "-k", socket, str(d.source)]
                if bitmap is not None:
                    args[1:1] = ["-B", bitmap]
                procs.append(
                    subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                )
                _wait_socket(procs[-1], Path(socket), d)
                sockets.append(socket)
            yield sockets
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


def _wait_socket(proc: subprocess.Popen[bytes], socket: Path, disk: OfflineDisk) -> None:
    deadline = time.monotonic() + EXPORT_WAIT_S
    while not socket.exists():
        if proc.poll() is not None:
            why = proc.stderr.read().decode(errors="replace")[:200] if proc.stderr else ""
            raise ConflictError(f"cannot read disk {disk.source} of the stopped VM: {why.strip()}")
        if time.monotonic() > deadline:
            raise HypervisorError(f"qemu-nbd did not export {disk.source} in time.")
        time.sleep(0.02)


def _nbd(socket: str) -> str:
    return f"driver=nbd,server.type=unix,server.path={socket}"


def _copy_all(disk: OfflineDisk, socket: str) -> None:
    _qemu_img("convert", "-O", "qcow2", "--image-opts", _nbd(socket), str(disk.out))


def _copy_dirty(disk: OfflineDisk, socket: str, bitmap: str) -> None:
    """Only the extents the bitmap marks dirty, each at its own offset; the rest stays
    unallocated (read from the parent point once the file is chained onto it)."""
    size = _virtual_size(disk.source)
    _qemu_img("create", "-q", "-f", "qcow2", str(disk.out), str(size))
    mapped = _qemu_img(
        "map", "--output=json", "--image-opts",
        f"{_nbd(socket)},x-dirty-bitmap=qemu:dirty-bitmap:{bitmap}",
    )  # fmt: skip
    for extent in json.loads(mapped.stdout):
        if extent["data"]:  # x-dirty-bitmap inverts: a dirty extent reads as "no data"
            continue
        window = f"offset={extent['start']},size={extent['length']}"
        _qemu_img(
            "convert", "-n",
            "--image-opts", f"driver=raw,{window},file.{_nbd(socket).replace(',', ',file.')}",
            "--target-image-opts",
            f"driver=raw,{window},file.driver=qcow2,file.file.filename={disk.out}",
        )  # fmt: skip


def _virtual_size(source: Path) -> int:
    done = _qemu_img("info", "--output=json", "-U", "-f", "qcow2", str(source))
    return int(json.loads(done.stdout)["virtual-size"])


def _redefine(dom: Any, name: str, targets: Sequence[str]) -> None:
    """Tell libvirt about the checkpoint whose bitmaps were added to the stopped disks."""
    import libvirt

    root = etree.Element("domaincheckpoint")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "creationTime").text = str(int(time.time()))
    disks = etree.SubElement(root, "disks")
    for target in targets:
        etree.SubElement(disks, "disk", name=target, checkpoint="bitmap", bitmap=name)
    xml = etree.tostring(root, encoding="unicode")
    dom.checkpointCreateXML(xml, libvirt.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE)


def _qemu_img(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["qemu-img", *args], capture_output=True, text=True, timeout=QEMU_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip()[:200]
        if "lock" in why:
            raise ConflictError(f"a disk of the stopped VM is in use (it started?): {why}")
        raise HypervisorError(f"qemu-img {args[0]} failed: {why}")
    return done
