"""A first real full backup: libvirt's backup API (push mode) on a running QEMU/TCG guest of a
real libvirtd host, the restore point's data checked against the guest's disk byte for byte."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from guest import GuestFactory

from corral.errors import HypervisorError
from corral.hypervisor.backup import back_up, flatten, full_backup

pytestmark = pytest.mark.realhost

#: (byte, offset MiB, length MiB) written into the guest's disk before it boots
PATTERNS = ((0xAB, 0, 8), (0x5C, 40, 8), (0x11, 63, 1))


def _qemu_io(path: Path, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", *extra, "-f", "qcow2", "-c", command, str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _write_patterns(disk: Path) -> None:
    for byte, offset, length in PATTERNS:
        done = _qemu_io(disk, f"write -P {byte} {offset}M {length}M")
        assert done.returncode == 0, done.stderr


def _has_patterns(image: Path) -> list[str]:
    """The patterns a read-back did not find (qemu-io's read -P compares every byte)."""
    missing = []
    for byte, offset, length in PATTERNS:
        done = _qemu_io(image, f"read -P {byte} {offset}M {length}M", "-r", "-U")
        if done.returncode != 0 or "Pattern verification failed" in done.stdout + done.stderr:
            missing.append(f"{byte:#x}@{offset}M")
    return missing


def _checkpoints(dom: Any) -> list[str]:
    return [c.getName() for c in dom.listAllCheckpoints(0)]


def test_a_full_push_backup_holds_the_guests_data(
    guest_factory: GuestFactory, tmp_path: Path
) -> None:
    disk = guest_factory.workdir / f"backup-{uuid.uuid4().hex[:8]}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    _write_patterns(disk)
    guest = guest_factory(0, disk=disk, load="idle", wait_ready=True)
    target = tmp_path / "full-vda.qcow2"
    checkpoint = f"corral-backup-{uuid.uuid4().hex[:8]}"

    result = full_backup(guest.dom, [("vda", target)], checkpoint, mib_s=200)

    assert [d.path for d in result.disks] == [target]
    assert _has_patterns(target) == []
    same = subprocess.run(
        ["qemu-img", "compare", "-U", "-f", "qcow2", "-F", "qcow2", str(disk), str(target)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr  # identical content
    assert stat.S_IMODE(target.stat().st_mode) & 0o077 == 0  # nobody else reads a backup
    assert 17 * 2**20 <= target.stat().st_size < 40 * 2**20  # only the 17 MiB written
    assert _checkpoints(guest.dom) == [checkpoint]  # the next incremental starts here


def test_a_backup_never_overwrites_a_restore_point(
    guest_factory: GuestFactory, tmp_path: Path
) -> None:
    guest = guest_factory(0, disk_mib=16, load="idle")
    target = tmp_path / "taken.qcow2"
    target.write_bytes(b"an older restore point")
    with pytest.raises(HypervisorError, match="is never reused"):
        full_backup(guest.dom, [("vda", target)], "corral-backup-unused")
    assert target.read_bytes() == b"an older restore point"
    assert _checkpoints(guest.dom) == []


def test_an_incremental_chain_restores_to_the_live_disk(
    guest_factory: GuestFactory, tmp_path: Path
) -> None:
    """The guest (load=disk) rewrites its first 16 MiB every second; the patterns further in are
    only in the full. Full + incremental, flattened, equal the live disk byte for byte."""
    disk = guest_factory.workdir / f"backup-{uuid.uuid4().hex[:8]}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    _write_patterns(disk)
    guest = guest_factory(0, disk=disk, load="disk", wait_ready=True)
    full, inc = tmp_path / "full.qcow2", tmp_path / "inc1.qcow2"
    full_backup(guest.dom, [("vda", full)], "cp-full")
    time.sleep(2)  # at least one more pass of the guest's writes
    full_backup(guest.dom, [("vda", inc)], "cp-inc1", since="cp-full")
    guest.dom.suspend()  # the live disk holds still for the comparison
    restored = flatten([full, inc], tmp_path / "restored.qcow2")
    same = subprocess.run(
        ["qemu-img", "compare", "-U", "-f", "qcow2", "-F", "qcow2", str(disk), str(restored)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    assert inc.stat().st_size < full.stat().st_size  # only the rewritten part
    zeros = _qemu_io(restored, "read -P 0 0 16M", "-r", "-U")
    assert zeros.returncode == 0 and "verification failed" not in zeros.stdout + zeros.stderr
    assert _has_patterns(restored)[1:] == []  # 0x5c@40M and 0x11@63M came from the full
    assert sorted(_checkpoints(guest.dom)) == ["cp-full", "cp-inc1"]


def _qemu_pid(dom: Any) -> int:
    """The guest's QEMU process: the one whose command line names the domain."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and f"guest={dom.name()}".encode() in b" ".join(argv):
            return int(proc.name)
    raise AssertionError(f"no QEMU process for {dom.name()}")


def test_after_a_guest_crash_the_next_backup_is_full_with_the_reason(
    guest_factory: GuestFactory, tmp_path: Path
) -> None:
    """QEMU killed with SIGKILL loses the checkpoint's bitmap: the incremental asked for next
    falls back to a full backup, says why, and starts a new chain."""
    disk = guest_factory.workdir / f"backup-{uuid.uuid4().hex[:8]}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    _write_patterns(disk)
    guest = guest_factory(0, disk=disk, load="idle", wait_ready=True)
    first = back_up(guest.dom, [("vda", tmp_path / "full1.qcow2")], "cp1")
    assert not first.incremental and first.fallback is None
    os.kill(_qemu_pid(guest.dom), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while guest.dom.isActive():
        assert time.monotonic() < deadline, "the killed guest still shows as running"
        time.sleep(0.1)
    guest.dom.create()

    second = back_up(guest.dom, [("vda", tmp_path / "next.qcow2")], "cp2", since="cp1")

    assert not second.incremental
    assert second.fallback is not None and "cp1" in second.fallback
    assert _has_patterns(tmp_path / "next.qcow2") == []  # a whole restore point again
    assert _checkpoints(guest.dom) == ["cp2"]  # the next chain starts at the new full
    third = back_up(guest.dom, [("vda", tmp_path / "inc.qcow2")], "cp3", since="cp2")
    assert third.incremental and third.fallback is None
