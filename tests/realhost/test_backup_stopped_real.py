"""A VM that is shut off still meets its RPO: its disks are backed up offline.

On a real libvirtd host: an online full, a clean shutdown (QEMU writes the checkpoint's bitmap
into the qcow2), a change to the stopped disk, an OFFLINE incremental holding exactly that
change, then the VM runs again and the next online backup is an incremental on the offline
point's checkpoint. While the disk is exported for the copy, the VM cannot start (QEMU's image
lock). After a crash the bitmap cannot be trusted: the offline backup is full, with the reason.
Every point restores byte for byte.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import libvirt
import pytest
import test_backup_repository_real as shared
from guest import GuestFactory
from test_backup_repository_real import (
    GUEST_WRITES,
    PATTERNS,
    _disk,
    _holds,
    _kill_qemu,
    _same,
    _wait_written,
)

from corral.engines.backup import Policy
from corral.hypervisor import backup_offline
from corral.inventory.service import Inventory
from corral.services.backup_exec import Executor, HostOpener
from corral.services.restore import Restorer
from corral.store import models as m
from corral.store.backup_repo import Repository

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)

real_inventory = shared.real_inventory  # the fixture: two real hosts in a fresh inventory
OFFLINE_CHANGE = (0x77, 20, 2)  # written into the stopped VM's disk: (byte, MiB, MiB)


def _shut_down(dom: Any) -> None:
    dom.shutdown()
    deadline = time.monotonic() + 60
    while dom.isActive():
        assert time.monotonic() < deadline, "the guest ignored the ACPI shutdown"
        time.sleep(0.2)


def _copy(src: Path, out: Path) -> Path:
    subprocess.run(["qemu-img", "convert", "-U", "-O", "qcow2", str(src), str(out)], check=True)
    return out


def test_a_stopped_vm_is_backed_up_offline_and_the_chain_goes_on(
    real_inventory: Inventory, guest_factory: GuestFactory, tmp_path: Path
) -> None:
    disk = _disk(guest_factory.workdir)
    guest = guest_factory(0, disk=disk, load="disk", wait_ready=True)
    _wait_written(guest.dom, 2 * GUEST_WRITES[2] * 2**20)
    real_inventory.sync()
    repo = Repository(tmp_path / "repo")
    executor = Executor(real_inventory.db, repo, Policy(), HostOpener.of(real_inventory))
    [a] = executor.run(guest.name).outcomes
    assert (a.status, a.kind) == ("done", "full"), a
    # its tier asks for a freeze; the guest has no agent: crash-consistent, and why
    assert a.consistency == "crash" and "guest agent is not configured" in str(a.consistency_note)

    _shut_down(guest.dom)
    real_inventory.sync()
    byte, at, length = OFFLINE_CHANGE
    write = ["qemu-io", "-f", "qcow2", "-c", f"write -P {byte} {at}M {length}M", str(disk)]
    subprocess.run(write, check=True, capture_output=True)
    at_b = _copy(disk, tmp_path / "at-b.qcow2")
    [b] = executor.run(guest.name).outcomes
    assert (b.status, b.kind, b.fallback) == ("done", "incremental", None), b
    assert (b.consistency, b.consistency_note) == (
        "application", "copied offline after a clean shutdown"
    )  # fmt: skip
    inc = repo.get(str(b.point)).disks[0]
    # the guest's rewritten 16 MiB (dirty since A) and the 2 MiB change; not the whole disk
    assert length * 2**20 <= inc.size < (GUEST_WRITES[2] + length + 2) * 2**20, inc.size
    assert not guest.dom.isActive()  # read offline: the VM was not started for it

    # while the disk is exported for a copy, the VM cannot start
    hold = [backup_offline.OfflineDisk("vda", disk, tmp_path / "unused.qcow2")]
    with backup_offline._exports(hold, None), pytest.raises(libvirt.libvirtError, match="lock"):
        guest.dom.create()

    guest.dom.create()
    real_inventory.sync()
    [c] = executor.run(guest.name).outcomes
    assert (c.status, c.kind, c.fallback) == ("done", "incremental", None), c
    assert [p.parent for p in repo.points(guest.uuid)] == [None, a.point, b.point]

    restorer = Restorer(real_inventory.db, repo, HostOpener.of(real_inventory))

    def restored(point: str | None) -> Path:
        name = f"bkst-{str(point)[-6:]}"
        done = restorer.restore(str(point), as_name=name, disk_dir=tmp_path, start=False)
        guest.dom.connect().lookupByName(name).undefine()
        return Path(done.disks[0])

    point_a = restored(a.point)
    assert _holds(point_a, GUEST_WRITES, *PATTERNS[1:]) == []
    assert _holds(point_a, OFFLINE_CHANGE) == ["0x77@20M"]  # written after A
    point_b = restored(b.point)
    assert _holds(point_b, GUEST_WRITES, OFFLINE_CHANGE, *PATTERNS[1:]) == []
    assert _same(at_b, point_b).returncode == 0  # the stopped disk, every byte
    guest.dom.suspend()
    point_c = restored(c.point)
    assert _same(disk, point_c).returncode == 0
    guest.dom.resume()

    # a crash leaves the bitmap unusable: the offline backup is full and says why
    _kill_qemu(guest.dom)
    [d] = executor.run(guest.name).outcomes
    assert (d.status, d.kind) == ("done", "full"), d
    assert d.fallback is not None and "bitmap" in d.fallback, d.fallback
    assert d.consistency == "crash" and "without a clean shutdown" in str(d.consistency_note)
    with real_inventory.db.session() as s:
        rows = s.query(m.BackupPointRow).order_by(m.BackupPointRow.taken_at).all()
        assert [r.consistency for r in rows] == ["crash", "application", "crash", "crash"]
        assert rows[0].consistency_note == a.consistency_note
    assert _same(disk, restored(d.point)).returncode == 0
