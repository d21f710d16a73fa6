"""The backup executor, the repository and restores on the real libvirtd hosts.

A QEMU/TCG guest's disk starts with known patterns; the guest then writes data of its own
(``load=disk``: zeros over its first 16 MiB). Restore points taken before and after are
restored and read back byte for byte; a restored copy boots on the other host; a backup whose
``corral`` process is killed with SIGKILL leaves no restore point and is redone by the next run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from guest import GuestFactory, guest_xml, wait_for_console
from tests.api.support import Api, api_fixture, settings_fixture  # noqa: F401 - fixtures

from corral.engines.backup import Policy
from corral.inventory.service import Inventory
from corral.services.backup_exec import Executor, HostOpener
from corral.services.restore import Restorer
from corral.store import models as m
from corral.store.backup_repo import Repository

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)

#: (byte, offset MiB, length MiB) on the disk before the guest first boots
Pattern = tuple[int, int, int]
PATTERNS: tuple[Pattern, ...] = ((0xAB, 0, 8), (0x5C, 40, 8), (0x11, 63, 1))
GUEST_WRITES = (0x00, 0, 16)  # what load=disk writes, again and again


def _qemu_io(path: Path, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", *extra, "-f", "qcow2", "-c", command, str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _holds(image: Path, *patterns: tuple[int, int, int]) -> list[str]:
    """The patterns a byte-for-byte read-back did not find."""
    missing = []
    for byte, offset, length in patterns:
        done = _qemu_io(image, f"read -P {byte} {offset}M {length}M", "-r", "-U")
        if done.returncode != 0 or "verification failed" in done.stdout + done.stderr:
            missing.append(f"{byte:#x}@{offset}M")
    return missing


def _same(a: Path, b: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-img", "compare", "-U", "-f", "qcow2", "-F", "qcow2", str(a), str(b)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _disk(workdir: Path, size: str = "64M", patterns: tuple[Pattern, ...] = PATTERNS) -> Path:
    disk = workdir / f"bk2-{uuid.uuid4().hex[:8]}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), size], check=True)
    for byte, offset, length in patterns:
        assert _qemu_io(disk, f"write -P {byte} {offset}M {length}M").returncode == 0
    return disk


@pytest.fixture
def real_inventory(inventory: Inventory, realhost_uris: list[str]) -> Inventory:
    for i, uri in enumerate(realhost_uris[:2], 1):
        inventory.add_host(f"bk2-real-{i}-{uuid.uuid4().hex[:4]}", uri)
    return inventory


def _host_name(inv: Inventory, index: int) -> str:
    return str(inv.list_hosts()[index].name)


@pytest.fixture
def restored(libvirt_conns: list[Any]) -> Iterator[list[tuple[str, Path]]]:
    """(VM name, disk) of each restored copy: removed from every host afterwards."""
    made: list[tuple[str, Path]] = []
    yield made
    for name, disk in made:
        for conn in libvirt_conns:
            for dom in conn.listAllDomains(0):
                if dom.name() == name:
                    if dom.isActive():
                        dom.destroy()
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
        disk.unlink(missing_ok=True)
        for log in disk.parent.glob(f"{name}.*.log"):
            log.unlink()


def _restart_writing(guest: Any, realhost_env: Any) -> None:
    """Shut the guest down cleanly (its checkpoint bitmaps are saved into the qcow2), give it
    the disk-writing load and boot it again: the same VM, now writing to its disk."""
    guest.dom.shutdown()
    deadline = time.monotonic() + 60
    while guest.dom.isActive():
        assert time.monotonic() < deadline, "the guest ignored the ACPI shutdown"
        time.sleep(0.2)
    xml = guest_xml(
        guest.name, kernel=realhost_env.kernel, initrd=realhost_env.initrd, load="disk",
        disk_path=guest.disk_path, uuid=guest.uuid, console_log=guest.console_log,
    )  # fmt: skip
    guest.dom.connect().defineXML(xml)
    guest.console_log.write_text("")
    guest.dom.create()
    wait_for_console(guest.console_log, timeout_s=120)
    _wait_written(guest.dom, 2 * GUEST_WRITES[2] * 2**20)


def _wait_written(dom: Any, nbytes: int) -> None:
    deadline = time.monotonic() + 120
    while dom.blockStats("vda")[3] < nbytes:  # wr_bytes
        assert time.monotonic() < deadline, "the guest did not write its disk"
        time.sleep(0.5)


def test_full_then_incremental_restore_each_point_byte_for_byte(
    real_inventory: Inventory, guest_factory: GuestFactory, realhost_env: Any,
    restored: list[tuple[str, Path]], tmp_path: Path,
) -> None:  # fmt: skip
    disk = _disk(guest_factory.workdir)
    reference_a = tmp_path / "reference-a.qcow2"  # the disk as it is at point A
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(disk), str(reference_a)], check=True)
    guest = guest_factory(0, disk=disk, load="idle", wait_ready=True)
    real_inventory.sync()
    repo = Repository(tmp_path / "repo")
    executor = Executor(real_inventory.db, repo, Policy(), HostOpener.of(real_inventory))
    restorer = Restorer(real_inventory.db, repo, HostOpener.of(real_inventory))

    first = executor.run(guest.name).outcomes[0]
    assert (first.status, first.kind, first.fallback) == ("done", "full", None), first
    _restart_writing(guest, realhost_env)  # a clean restart: the bitmap survives it
    second = executor.run(guest.name).outcomes[0]
    assert (second.status, second.kind, second.fallback) == ("done", "incremental", None), second

    points = repo.points(guest.uuid)
    assert [(p.id, p.kind, p.parent) for p in points] == [
        (first.point, "full", None), (second.point, "incremental", first.point)
    ]  # fmt: skip
    assert all(v.ok for v in (repo.verify(p.id) for p in points))
    inc_disk = points[1].disks[0]
    # the incremental holds the 16 MiB the guest rewrote (64 KiB granularity), not the rest
    assert 16 * 2**20 <= inc_disk.size < 16 * 2**20 + 2 * 2**20, inc_disk.size

    # point A, restored as a new VM (not started): the disk as it was before the guest wrote
    name_a = f"bk2-{uuid.uuid4().hex[:8]}"
    done_a = restorer.restore(str(first.point), as_name=name_a, disk_dir=tmp_path, start=False)
    restored.append((name_a, Path(done_a.disks[0])))
    assert _same(reference_a, Path(done_a.disks[0])).returncode == 0
    assert _holds(Path(done_a.disks[0]), *PATTERNS) == []

    # point B: the guest's zeros over the first pattern, the rest from the full
    guest.dom.suspend()  # the live disk holds still for the comparison
    name_b = f"bk2-{uuid.uuid4().hex[:8]}"
    done_b = restorer.restore(str(second.point), as_name=name_b, disk_dir=tmp_path, start=False)
    restored.append((name_b, Path(done_b.disks[0])))
    assert _holds(Path(done_b.disks[0]), GUEST_WRITES, *PATTERNS[1:]) == []
    assert _same(disk, Path(done_b.disks[0])).returncode == 0  # == the live disk, every byte
    with real_inventory.db.session() as s:
        assert s.query(m.BackupRestoreRow).count() == 2
        assert {r.kind for r in s.query(m.BackupPointRow)} == {"full", "incremental"}


def test_restore_in_place_then_the_next_backup_is_full_with_the_reason(
    real_inventory: Inventory, guest_factory: GuestFactory, tmp_path: Path
) -> None:
    disk = _disk(guest_factory.workdir)
    guest = guest_factory(0, disk=disk, load="disk", wait_ready=True)
    _wait_written(guest.dom, 32 * 2**20)
    real_inventory.sync()
    repo = Repository(tmp_path / "repo")
    executor = Executor(real_inventory.db, repo, Policy(), HostOpener.of(real_inventory))
    before = executor.run(guest.name).outcomes[0]
    assert _holds(repo.folder(str(before.point)) / "vda.qcow2", GUEST_WRITES) == []
    guest.dom.destroy()
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x66 0 16M", str(disk)], check=True)
    guest.dom.create()  # the VM runs again, with data the point does not hold

    done = Restorer(real_inventory.db, repo, HostOpener.of(real_inventory)).restore(
        str(before.point), start=False
    )

    assert (done.mode, done.vm_uuid, done.started) == ("in-place", guest.uuid, False)
    assert not guest.dom.isActive()  # stopped first, not started again (start=False)
    assert _holds(disk, GUEST_WRITES, *PATTERNS[1:]) == []  # the 0x66 write is undone
    guest.dom.create()
    after = executor.run(guest.name).outcomes[0]
    assert after.kind == "full" and after.fallback is not None
    assert "gone from host" in after.fallback and before.point in after.fallback


def test_a_restored_copy_boots_on_the_other_host(
    real_inventory: Inventory, guest_factory: GuestFactory,
    restored: list[tuple[str, Path]], tmp_path: Path, corral_env: dict[str, str],
) -> None:  # fmt: skip
    guest = guest_factory(0, disk=_disk(guest_factory.workdir), wait_ready=True)
    real_inventory.sync()
    ran = _corral(corral_env, "backup", "run", "--vm", guest.name, "-o", "json")
    assert ran.returncode == 0, ran.stderr
    point = Repository(Path(corral_env["CORRAL_BACKUP_REPOSITORY"])).points(guest.uuid)[0]
    other = _host_name(real_inventory, 1)
    name = f"bk2-{uuid.uuid4().hex[:8]}"
    done = _corral(
        corral_env, "restore", guest.name, "--point", point.id, "--host", other,
        "--as", name, "--disk-dir", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    restored.append((name, tmp_path / f"{name}-vda.qcow2"))
    conn = libvirt.open(real_inventory.list_hosts()[1].uri)
    try:
        dom = conn.lookupByName(name)
        assert dom.isActive() and dom.UUIDString() != guest.uuid
        assert _holds(tmp_path / f"{name}-vda.qcow2", *PATTERNS) == []
        macs_old = _macs(guest.dom.XMLDesc(0))
        assert not (set(_macs(dom.XMLDesc(0))) & set(macs_old))
        console = Path(_console(dom))
        assert console.name == f"{name}.serial.log"  # its own console, not the original's
        wait_for_console(console, timeout_s=120)  # the restored VM boots to its /init
    finally:
        conn.close()


def _macs(xml: str) -> list[str]:
    from lxml import etree

    return [str(e.get("address")) for e in etree.fromstring(xml.encode()).iterfind(".//mac")]


def _console(dom: Any) -> str:
    from lxml import etree

    source = etree.fromstring(dom.XMLDesc(0).encode()).find("./devices/serial/source")
    assert source is not None
    return str(source.get("path"))


@pytest.fixture
def corral_env(real_inventory: Inventory, db: Any, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    policy = tmp_path / "policy.yaml"
    policy.write_text("planner: {job_mib_s: 2000}\n")
    return {
        **os.environ,
        "CORRAL_HOME": str(home),
        "CORRAL_DATABASE_URL": str(db.engine.url.render_as_string(hide_password=False)),
        "CORRAL_BACKUP_REPOSITORY": str(tmp_path / "repo"),
        "CORRAL_BACKUP_POLICY": str(policy),
    }


def _corral(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def _copied(dom: Any) -> int:
    """Bytes the running backup job copied; 0 while libvirt is still setting the job up
    (jobStats then fails with "backup job data missing")."""
    try:
        return int(dom.jobStats().get("disk_processed", 0))
    except libvirt.libvirtError:
        return 0


def test_a_backup_killed_with_sigkill_is_redone_by_the_next_run(
    real_inventory: Inventory, guest_factory: GuestFactory, tmp_path: Path,
    corral_env: dict[str, str],
) -> None:  # fmt: skip
    """200 MiB to copy at 1 MiB/s: the corral process is killed while the job runs. No restore
    point is left; libvirt's job and the unfinished folder are cleaned up by the next run,
    which takes the backup."""
    big = ((0xAB, 0, 8), (0x5C, 40, 8), (0x11, 63, 1), (0x3C, 64, 192))
    disk = _disk(guest_factory.workdir, "256M", big)
    guest = guest_factory(0, disk=disk, wait_ready=True)
    real_inventory.sync()
    policy = Path(corral_env["CORRAL_BACKUP_POLICY"])
    policy.write_text("planner: {job_mib_s: 1}\n")
    repo = Repository(Path(corral_env["CORRAL_BACKUP_REPOSITORY"]))
    killed = subprocess.Popen(
        [sys.executable, "-m", "corral", "backup", "run", "--vm", guest.name],
        env=corral_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    vm_dir = repo.root / guest.uuid
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".partial-") for p in vm_dir.glob(".partial-*")):
        assert killed.poll() is None, killed.communicate()
        assert time.monotonic() < deadline, "the backup never started"
        time.sleep(0.1)
    while not _copied(guest.dom):
        assert time.monotonic() < deadline, "libvirt's backup job never started copying"
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    assert guest.dom.jobStats().get("disk_remaining", 0) > 0  # killed half-way
    assert repo.points(guest.uuid) == []  # nothing half-made counts as a restore point
    with real_inventory.db.session() as s:
        assert [r.status for r in s.query(m.BackupRunRow)] == ["running"]

    policy.write_text("planner: {job_mib_s: 2000}\n")
    again = _corral(corral_env, "backup", "run", "--vm", guest.name, "-o", "json")

    assert again.returncode == 0, again.stderr
    assert "aborted the backup job" in again.stdout and "removed .partial-" in again.stdout
    points = repo.points(guest.uuid)
    assert [p.kind for p in points] == ["full"]
    assert repo.verify(points[0].id).ok
    assert _holds(repo.folder(points[0].id) / "vda.qcow2", *big) == []
    assert repo.leftovers(guest.uuid) == []
    assert [c.getName() for c in guest.dom.listAllCheckpoints(0)] == [points[0].checkpoint]
    with real_inventory.db.session() as s:
        runs = s.query(m.BackupRunRow).order_by(m.BackupRunRow.id).all()
        assert [r.status for r in runs] == ["interrupted", "done"]


def _kill_qemu(dom: Any) -> None:
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and f"guest={dom.name()}".encode() in b" ".join(argv):
            os.kill(int(proc.name), signal.SIGKILL)
            break
    else:
        raise AssertionError(f"no QEMU process for {dom.name()}")
    deadline = time.monotonic() + 30
    while dom.isActive():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_after_a_guest_crash_and_after_a_migration_the_run_is_full_with_the_reason(
    real_inventory: Inventory, guest_factory: GuestFactory, realhost_uris: list[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    """A crash loses the checkpoint's bitmap (libvirt refuses the incremental); a move to
    another host leaves the checkpoint behind. Either way the next point is a full one that
    says why, and the chain goes on from it."""
    from guest import migrate_live

    guest = guest_factory(0, disk=_disk(guest_factory.workdir), wait_ready=True)
    real_inventory.sync()
    repo = Repository(tmp_path / "repo")
    executor = Executor(real_inventory.db, repo, Policy(), HostOpener.of(real_inventory))
    assert executor.run(guest.name).outcomes[0].kind == "full"

    _kill_qemu(guest.dom)
    guest.dom.create()
    crashed = executor.run(guest.name).outcomes[0]
    assert crashed.kind == "full" and crashed.fallback is not None
    assert "bitmap" in crashed.fallback or "inconsistent" in crashed.fallback, crashed.fallback
    assert executor.run(guest.name).outcomes[0].kind == "incremental"

    migrate_live(guest.dom, realhost_uris[1])
    real_inventory.sync()
    moved = executor.run(guest.name).outcomes[0]
    assert moved.kind == "full" and moved.fallback is not None
    assert "gone from host" in moved.fallback and _host_name(real_inventory, 1) in moved.fallback
    after = executor.run(guest.name).outcomes[0]
    assert (after.kind, after.fallback) == ("incremental", None)
    kinds = [(p.kind, p.fallback is not None) for p in repo.points(guest.uuid)]
    assert kinds == [
        ("full", False), ("full", True), ("incremental", False), ("full", True),
        ("incremental", False),
    ]  # fmt: skip
    with real_inventory.db.session() as s:
        details = [r.detail for r in s.query(m.BackupRunRow).order_by(m.BackupRunRow.id)]
    assert details[1] == crashed.fallback and details[3] == moved.fallback


def test_backup_and_restore_through_the_rest_api(
    real_inventory: Inventory, api: Api, guest_factory: GuestFactory,
    restored: list[tuple[str, Path]],
) -> None:  # fmt: skip
    """The jobs behind POST /backup/run and /backup/restore on a real host: the copy's disk
    goes beside the original's (the API takes no path)."""
    guest = guest_factory(0, disk=_disk(guest_factory.workdir), wait_ready=True)
    real_inventory.sync()
    ran = api.job("/api/v1/backup/run", {"vm": guest.name})
    assert ran["state"] == "succeeded", ran
    [outcome] = ran["result"]["outcomes"]
    assert (outcome["status"], outcome["kind"]) == ("done", "full")
    listed = api.get("/api/v1/backup/points", vm=guest.name).json()["items"]
    assert [p["id"] for p in listed] == [outcome["point"]]

    name = f"bk2-{uuid.uuid4().hex[:8]}"
    body = {"point": outcome["point"], "as_name": name, "start": False}
    done = api.job("/api/v1/backup/restore", body)
    assert guest.disk_path is not None
    restored.append((name, guest.disk_path.parent / f"{name}-vda.qcow2"))
    assert done["state"] == "succeeded", done
    assert done["result"]["disks"] == [str(guest.disk_path.parent / f"{name}-vda.qcow2")]
    assert _holds(Path(done["result"]["disks"][0]), *PATTERNS) == []
    with real_inventory.db.session() as s:
        audited = s.query(m.AuditEntry).filter(m.AuditEntry.target.like("restore%")).all()
        assert {(a.action, a.target, a.actor) for a in audited} == {
            ("create", f"restore-point:{outcome['point']}", "tests"),
            ("create", f"restore:{outcome['point']}", "tests"),
        }
