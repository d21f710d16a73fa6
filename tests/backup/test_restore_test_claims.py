"""Restore tests from the backup loop, and tests whose process died.

Real PostgreSQL, real qcow2 restore points, libvirt's test driver as the host (it defines,
starts and removes VMs and networks; it boots nothing, so a test counts as booted once its
VM runs ``settle_s`` = 0 seconds). A test is claimed before it acts: its row is ``running``
with its process and the files it will write. A claim whose process is gone (a real process
that exited) is found by the next loop round: the scratch VM and network it names go from the
host, its disks (and their temporary files) and console from disk, and it ends as failed with
the reason. A claim whose process still runs is left alone, and its host gets no second test.
(A real SIGKILL half-way on a real libvirtd: tests/realhost/test_backup_restore_test_real.py.)
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import libvirt
import pytest
from lxml import etree
from sqlalchemy import select

from corral.domain.backup import Manifest
from corral.engines.backup import Policy
from corral.engines.backup.policy import RestoreTesting
from corral.hypervisor import restore as hv
from corral.inventory.service import Inventory
from corral.services.backup_exec import Executor, HostOpener
from corral.services.backup_loop import BackupLoop
from corral.services.backup_restore_test import RestoreTester, RestoreTestRound, history
from corral.store import models as m
from corral.store.backup_repo import Repository
from tests.backup.points import T0, make_point
from tests.forensic.support import forensic_service

ON_POSTGRESQL = pytest.mark.parametrize("db", ["postgresql"], indirect=True)
OTHER = "0f6a3c1e-2222-4222-8333-944455556666"  # a VM the inventory no longer has
POLICY = Policy(restore_test=RestoreTesting(every_minutes=1440, boot_timeout_s=5, settle_s=0))


class MovedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def test_conn() -> Iterator[Any]:
    """The test driver's shared host; every scratch VM and network gone afterwards (the
    driver's state lives as long as this process)."""
    conn = libvirt.open("test:///default")
    yield conn
    for dom in conn.listAllDomains(0):
        if dom.name().startswith("corral-rt-"):
            hv.remove_vm(dom)
    for net in conn.listAllNetworks(0):
        if net.name().startswith("corral-rt-"):
            hv.remove_network(net)
    conn.close()


def _point(inv: Inventory, repo: Repository, conn: Any, vm_dir: Path) -> Manifest:
    """A restore point of the test driver's VM "test": its disk and file console in
    ``vm_dir``, where a restore test writes its copy's too."""
    vm_dir.mkdir()
    root = etree.fromstring(conn.lookupByName("test").XMLDesc(0).encode())
    source = root.find("./devices/disk/source")
    assert source is not None
    source.set("file", str(vm_dir / "vda.qcow2"))
    devices = root.find("devices")
    assert devices is not None
    serial = etree.SubElement(devices, "serial", type="file")
    etree.SubElement(serial, "source", path=str(vm_dir / "test.serial.log"))
    etree.SubElement(serial, "target", port="0")
    xml = etree.tostring(root, encoding="unicode")
    uuid = str(inv.find_vm("test").uuid)
    return make_point(repo, 1, None, inv.db, vm=uuid, host="h1", xml=xml, name="test")


def _loop(inv: Inventory, tmp_path: Path, clock: MovedClock, per_round: int = 1) -> BackupLoop:
    repo = Repository(tmp_path / "repo")
    hosts = HostOpener.of(inv)
    executor = Executor(inv.db, repo, POLICY, hosts, now=clock)
    forensic = forensic_service(inv.db, tmp_path)
    tester = RestoreTester(inv.db, repo, hosts, POLICY, now=clock)
    return BackupLoop(executor, forensic, 60, tester=tester, restore_tests=per_round)


def _on_test_host(
    inv: Inventory, tmp_path: Path, conn: Any
) -> tuple[BackupLoop, RestoreTester, Manifest, MovedClock]:
    """A loop (and its tester) over host h1, the test driver, with a point of its VM."""
    inv.add_host("h1", "test:///default")
    inv.sync()
    clock = MovedClock(T0 + timedelta(days=1))
    loop = _loop(inv, tmp_path, clock)
    assert loop.tester is not None
    return loop, loop.tester, _point(inv, loop.tester.repo, conn, tmp_path / "vm"), clock


def _scratch(conn: Any) -> set[str]:
    names = {d.name() for d in conn.listAllDomains(0)} | {n.name() for n in conn.listAllNetworks(0)}
    return {n for n in names if n.startswith("corral-rt-")}


def _claimed(
    inv: Inventory, tester: RestoreTester, point: Manifest, name: str, worker: str,
    at: datetime | None = None,
) -> list[str]:  # fmt: skip
    """The claim a test writes before it acts (its files returned), as made by ``worker``
    (host:pid) at ``at``."""
    claim = tester._claim(point, "h1", name, None)
    with inv.db.session() as s:
        row = s.get(m.RestoreTestRow, claim.id)
        assert row is not None and row.state == "running"
        row.worker, row.tested_at = worker, at or row.tested_at
        return list(row.files or ())


def _dead_worker() -> str:
    """host:pid of a process that ran and exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}"


@ON_POSTGRESQL
def test_each_loop_round_tests_the_due_vm_once_and_records_it(
    inventory: Inventory, tmp_path: Path, test_conn: Any
) -> None:
    loop, _tester, point, clock = _on_test_host(inventory, tmp_path, test_conn)

    first = loop.round()
    assert first.restore_tests is not None and first.restore_tests.recovered == ()
    [tested] = first.restore_tests.tested
    assert (tested.point, tested.host, tested.ok, tested.state) == (point.id, "h1", True, "ended")
    assert tested.rto_minutes == 240 and tested.rto_met is True  # the restart tier
    assert "backups" in first.errors or first.backups is not None  # its own stage, failed or not
    assert "1 restore test(s), 0 failed" in first.describe()
    assert _scratch(test_conn) == set()  # the copy and its network are gone
    assert sorted(p.name for p in (tmp_path / "vm").iterdir()) == []  # its disk and console too
    assert [(r.point, r.ok, r.state) for r in history(inventory.db)] == [(point.id, True, "ended")]

    clock.at += timedelta(hours=23)  # the policy's every: 1 day
    assert loop.round().restore_tests == RestoreTestRound()
    clock.at += timedelta(hours=1)
    again = loop.round().restore_tests
    assert again is not None and [r.ok for r in again.tested] == [True]
    assert len(history(inventory.db)) == 2

    assert loop.lead is not None
    loop.lead.release()
    off = _loop(inventory, tmp_path, clock, per_round=0)  # CORRAL_BACKUP_LOOP_RESTORE_TESTS=0
    clock.at += timedelta(days=2)
    assert off.round().restore_tests == RestoreTestRound()
    assert off.lead is not None
    off.lead.release()


@ON_POSTGRESQL
def test_a_claim_whose_process_died_is_cleaned_up_by_the_next_round_and_ended_failed(
    inventory: Inventory, tmp_path: Path, test_conn: Any
) -> None:
    loop, tester, point, _clock = _on_test_host(inventory, tmp_path, test_conn)

    # The claim a test writes before it acts, then what it had done when its process died:
    # the copy's disk written, a second one half-written, the VM defined and running on the
    # isolated network, its console written.
    name = "corral-rt-0badc0"
    disk, console = map(Path, _claimed(inventory, tester, point, name, _dead_worker()))
    assert disk == tmp_path / "vm" / f"{name}-vda.qcow2" and console.name.startswith(name)
    xml = (tester.repo.folder(point.id) / "domain.xml").read_text()
    copy, _uuid = hv.as_new_vm(xml, name, {"vda": disk}, network=name)
    test_conn.networkCreateXML(hv.isolated_network_xml(name, "crt-0badc0"))
    test_conn.defineXML(copy).create()
    for path in (disk, hv.partial(disk), console):
        path.write_bytes(b"left behind")
    # a row that lists a file the test does not write (edited in the database): kept
    keep = tmp_path / "not-a-restore-test-file.qcow2"
    keep.write_bytes(b"keep")
    with inventory.db.session() as s:
        row = s.scalars(select(m.RestoreTestRow).where(m.RestoreTestRow.network == name)).one()
        row.files = [*(row.files or ()), str(keep)]
    [listed] = history(inventory.db)
    assert (listed.state, listed.ok) == ("running", False)  # seen as running meanwhile

    done = loop.round().restore_tests
    assert done is not None
    [recovered] = done.recovered
    assert (recovered.point, recovered.network, recovered.ok) == (point.id, name, False)
    assert recovered.detail.startswith("the restore test's process ended before the test did")
    for what in (
        f"removed scratch VM {name} (with its disks and consoles)",
        f"removed isolated network {name}",
        f"removed {hv.partial(disk)}",  # the half-written one: no VM names it
    ):
        assert what in recovered.detail
    assert _scratch(test_conn) == set()
    assert not disk.exists() and not hv.partial(disk).exists() and not console.exists()
    assert keep.read_bytes() == b"keep" and str(keep) not in recovered.detail
    assert done.tested == ()  # the killed test counts as this VM's test: not due again yet
    ended = [r for r in history(inventory.db) if r.network == name]
    assert [(r.state, r.ok, r.rto_met) for r in ended] == [("ended", False, False)]
    assert loop.round().restore_tests == RestoreTestRound()  # recovered once, not again
    assert loop.lead is not None
    loop.lead.release()


@ON_POSTGRESQL
def test_a_running_claim_is_left_alone_and_its_host_gets_no_second_test(
    inventory: Inventory, tmp_path: Path, test_conn: Any
) -> None:
    loop, tester, point, _clock = _on_test_host(inventory, tmp_path, test_conn)
    xml = (tester.repo.folder(point.id) / "domain.xml").read_text()
    other = make_point(tester.repo, 2, None, inventory.db, vm=OTHER, host="h1", xml=xml)
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        worker = f"{socket.gethostname()}:{busy.pid}"
        _claimed(inventory, tester, point, "corral-rt-a11ve0", worker)
        assert [p.id for p in tester.due()] == [other.id]  # never tested, due
        done = loop.round().restore_tests
        assert done is not None and done.recovered == () and done.tested == ()  # h1 is busy
        assert [r.state for r in history(inventory.db)] == ["running"]
    finally:
        busy.kill()
        busy.wait()
    done = loop.round().restore_tests  # its process is gone now
    assert done is not None and [r.network for r in done.recovered] == ["corral-rt-a11ve0"]
    assert done.recovered[0].detail.endswith("it had left nothing")
    assert [(r.point, r.ok) for r in done.tested] == [(other.id, True)]  # h1 is free again
    assert loop.lead is not None
    loop.lead.release()


@ON_POSTGRESQL
def test_a_claim_counts_as_dead_past_the_longest_a_test_takes_whatever_its_pid(
    inventory: Inventory, tmp_path: Path, test_conn: Any
) -> None:
    _, tester, point, clock = _on_test_host(inventory, tmp_path, test_conn)
    elsewhere = "another-machine.example:4242"  # cannot be asked whether it still runs
    _claimed(inventory, tester, point, "corral-rt-e15e00", elsewhere)
    reused = f"{socket.gethostname()}:1"  # a pid that runs (init): reused, say
    _claimed(inventory, tester, point, "corral-rt-e15e01", reused)
    longest = 2 * hv.QEMU_IMG_TIMEOUT_S + 5 + 0 + 3600  # two files, boot, settle, margin
    clock.at += timedelta(seconds=longest)
    assert tester.recover() == []
    clock.at += timedelta(seconds=1)
    ended = tester.recover()
    assert [(r.network, r.ok) for r in ended] == [
        ("corral-rt-e15e00", False), ("corral-rt-e15e01", False)
    ]  # fmt: skip


@ON_POSTGRESQL
def test_a_vm_whose_tier_the_policy_lacks_is_still_tested_without_an_rto(
    inventory: Inventory, tmp_path: Path, test_conn: Any
) -> None:
    _, tester, point, _clock = _on_test_host(inventory, tmp_path, test_conn)
    with inventory.db.session() as s:
        vm = s.query(m.VM).filter(m.VM.uuid == point.vm_uuid).one()
        vm.protection_tier = "gold"  # no such tier in the policy
    [result] = tester.run(point=point.id)
    assert (result.ok, result.rto_minutes, result.rto_met, result.state) == (
        True, None, None, "ended"
    )  # fmt: skip
    assert _scratch(test_conn) == set()
