"""A host whose libvirtd hangs (SIGSTOP) in the middle of a restore test, or while a forensic
snapshot is asked for.

(a) The restore test's host freezes right after the restored disk is written: the test ends
within the host timeout with a sentence saying the host stopped answering, its disks are gone
at once, the restore point is not proven (the stored test failed); once the host answers again,
the next restore test on it boots and sweeps whatever the frozen daemon had kept or still did
on waking (the scratch VM, the isolated network): nothing of the failed test is left.
(b) A forensic snapshot of a VM on the frozen host: a clear error within the host timeout,
no evidence folder and no custody record; after the thaw the same snapshot is taken.

Freezing a daemon other tests share is not allowed: each test starts a PRIVATE host
(scripts/realhosts.sh, tests/realhost/privateset.py) and the daemon is always thawed in
``finally``. The waits below are hang guards, not speed assertions.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from guest import READY_MARKER, RealhostEnv, guest_xml, wait_for_console
from test_backup_libvirtd_kill import PrivateHost, _wait_answers
from test_backup_libvirtd_kill import private_host as private_host
from test_backup_repository_real import _disk

from corral.engines.backup import Policy, parse_policy
from corral.errors import HostUnreachableError
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.services.backup_exec import Executor, HostOpener
from corral.services.backup_restore_test import RestoreTester, RestoreTestResult, history
from corral.services.forensic import ForensicService
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.evidence import EvidenceStore

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)

HOST_TIMEOUT_S = 5.0
HANG_GUARD_S = 120.0  # far above the host timeout: only a call that hangs reaches it


class Frozen:
    """The private host's libvirtd stopped (SIGSTOP) until ``thaw``, which always runs."""

    def __init__(self, host: PrivateHost) -> None:
        self.pid = host.daemon_pid()
        self.frozen = False

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            os.kill(self.pid, signal.SIGCONT)
            self.frozen = False


@pytest.fixture
def guest(
    private_host: PrivateHost, realhost_env: RealhostEnv, inventory: Inventory, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """(VM name, host name) of a running guest with a qcow2 disk on the private host, synced."""
    conn = libvirt.open(private_host.uri)
    name = f"bk-hang-{uuidlib.uuid4().hex[:6]}"
    console = tmp_path / f"{name}.log"
    dom = conn.defineXML(
        guest_xml(name, kernel=realhost_env.kernel, initrd=realhost_env.initrd,
                  disk_path=_disk(tmp_path), console_log=console)
    )  # fmt: skip
    dom.create()
    wait_for_console(console, timeout_s=120)
    host = f"bk-hang-{uuidlib.uuid4().hex[:4]}"
    inventory.add_host(host, private_host.uri)
    inventory.sync()
    yield name, host
    conn.close()


def _opener(inventory: Inventory) -> HostOpener:
    access = HostAccess(node_dir=inventory.access.node_dir, timeout_s=HOST_TIMEOUT_S)
    return HostOpener(inventory.db, access, inventory.secrets)


def _in_thread(work: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:  # the test asserts on what came out
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _scratch(conn: Any) -> set[str]:
    names = {d.name() for d in conn.listAllDomains(0)} | set(conn.listNetworks())
    return {n for n in names | set(conn.listDefinedNetworks()) if n.startswith("corral-rt-")}


def test_a_restore_test_whose_host_hangs_fails_and_leaves_nothing(
    private_host: PrivateHost, guest: tuple[str, str], inventory: Inventory, tmp_path: Path
) -> None:
    name, _host = guest
    hosts = _opener(inventory)
    repo = Repository(tmp_path / "repo")
    [backup] = Executor(inventory.db, repo, Policy(), hosts).run(name).outcomes
    assert backup.status == "done", backup
    policy = parse_policy(
        {"restore_test": {"boot_marker": READY_MARKER, "settle_s": 1, "boot_timeout_s": 180}},
        "test policy",
    )
    tester = RestoreTester(inventory.db, repo, hosts, policy)
    disks = tmp_path / "rt"
    disks.mkdir()
    daemon = Frozen(private_host)
    try:
        thread, out = _in_thread(lambda: tester.run(point=backup.point, disk_dir=disks))
        deadline = time.monotonic() + HANG_GUARD_S
        while not any(disks.glob("corral-rt-*-vda.qcow2")):  # the restored disk is written
            assert thread.is_alive() and time.monotonic() < deadline, out
            time.sleep(0.005)
        daemon.freeze()  # mid-restore: next come the definition and the boot
        thread.join(HANG_GUARD_S)
        assert not thread.is_alive(), "the restore test hangs with its host"
    finally:
        daemon.thaw()
    assert len(out) == 1 and isinstance(out[0], list), f"the restore test raised: {out!r}"
    [[failed]] = out
    assert isinstance(failed, RestoreTestResult), failed
    assert not failed.ok and "stopped answering" in failed.detail, failed
    assert failed.rto_met is False
    assert not any(disks.iterdir())  # the restored disk went at once, not when the host woke
    assert [(r.point, r.ok) for r in history(inventory.db)] == [(backup.point, False)]

    conn = _wait_answers(private_host.uri)  # the host is back: the next test boots and sweeps
    print(f"\nfailed test: {failed.detail!r} after {failed.seconds:.1f} s; left on the host "
          f"when it woke: {sorted(_scratch(conn)) or 'nothing'}")  # fmt: skip
    [proven] = tester.run(point=backup.point, disk_dir=disks)
    assert proven.ok, proven
    assert _scratch(conn) == set(), "a scratch VM or network of a restore test is left"
    assert not any(disks.iterdir())
    assert [(r.point, r.ok) for r in history(inventory.db)] == [
        (backup.point, True), (backup.point, False)
    ]  # fmt: skip
    conn.close()


def test_a_forensic_snapshot_on_a_hung_host_fails_clearly_and_works_after_the_thaw(
    private_host: PrivateHost, guest: tuple[str, str], inventory: Inventory, tmp_path: Path
) -> None:
    name, _host = guest
    store = EvidenceStore(tmp_path / "forensic")
    forensic = ForensicService(
        inventory.db, store, Repository(tmp_path / "repo"), _opener(inventory)
    )
    daemon = Frozen(private_host)
    try:
        daemon.freeze()
        thread, out = _in_thread(lambda: forensic.snapshot(name, by="soc", reason="IDS alert"))
        thread.join(HANG_GUARD_S)
        assert not thread.is_alive(), "the snapshot hangs with its host"
    finally:
        daemon.thaw()
    [refused] = out
    assert isinstance(refused, HostUnreachableError), refused
    assert f"did not answer within {HOST_TIMEOUT_S:g} s" in refused.message
    assert forensic.evidence() == []
    assert not store.root.exists() or not any(store.root.iterdir())
    with inventory.db.session() as s:
        assert s.query(m.ForensicRecordRow).count() == 0

    _wait_answers(private_host.uri).close()
    evidence = forensic.snapshot(name, by="soc", reason="IDS alert, again")
    assert [e.id for e in forensic.evidence()] == [evidence.id]
    assert forensic.verify(evidence.id)[0].ok
