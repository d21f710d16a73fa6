"""A frozen libvirtd (SIGSTOP) never keeps ``corral sync`` or ``metrics collect`` from ending.

Issue 9 item 9: with one daemon frozen, both commands must end within the host timeout, exit 5
naming the host, and still do their work for the healthy host. The daemons are shared with other
test runs, so the freeze lasts only as long as one command and is always lifted in ``finally``.
The subprocess timeout below is a hang guard, not a speed assertion.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from cryptography.fernet import Fernet
from guest import RealhostEnv, guest_xml

from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.inventory.sync import SyncReport
from corral.security.secrets import SecretBox
from corral.store.db import Database

HANG_GUARD_S = 45.0  # far above the 3 s host timeout; only a command that hangs reaches it
HOST_TIMEOUT_S = "3"


def _daemon_pid(uri: str) -> int:
    """The libvirtd behind a realhosts.sh URI, from the pid file beside its socket."""
    socket = Path(uri.split("socket=", 1)[1])
    return int((socket.parent / "libvirtd.pid").read_text().strip())


def _corral(home: Path, *args: str, host_timeout: str = "15") -> subprocess.CompletedProcess[str]:
    """Run corral; only commands against a frozen host use the short host timeout (a healthy
    daemon on a loaded machine may take longer than 3 s to answer)."""
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_HOST_TIMEOUT": host_timeout}
    env.pop("CORRAL_DATABASE_URL", None)
    env.pop("CORRAL_METRICS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_GUARD_S,
    )


def _frozen(pid: int, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one command while the daemon ``pid`` is stopped; it is resumed whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        return _corral(home, *args, host_timeout=HOST_TIMEOUT_S)
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def marker_vm(realhost_env: RealhostEnv, libvirt_conns: list[Any]) -> Iterator[str]:
    """A defined (never started) domain on the healthy host, so its sync is visible."""
    name = f"corral-hosts-hung-{uuidlib.uuid4().hex[:8]}"
    conn = libvirt_conns[0]
    dom = conn.defineXML(guest_xml(name, kernel=realhost_env.kernel, initrd=realhost_env.initrd))
    try:
        yield name
    finally:
        dom.undefine()


@pytest.fixture
def two_hosts(tmp_path: Path, realhost_uris: list[str]) -> tuple[Path, int]:
    """A Corral home with host 1 as ``healthy`` and host 2 as ``frozen``; host 2's daemon pid."""
    if len(realhost_uris) < 2:
        pytest.fail("these tests need two real hosts (scripts/realhosts.sh up --hosts 2)")
    home = tmp_path / "home"
    for name, uri in (("healthy", realhost_uris[0]), ("frozen", realhost_uris[1])):
        added = _corral(home, "hosts", "add", name, uri)
        assert added.returncode == 0, added.stderr
    return home, _daemon_pid(realhost_uris[1])


def test_sync_ends_with_exit_5_naming_the_frozen_host(
    two_hosts: tuple[Path, int], marker_vm: str
) -> None:
    home, pid = two_hosts
    proc = _frozen(pid, home, "sync", "-o", "json")
    assert proc.returncode == 5, proc.stderr
    assert "host frozen was not synced" in proc.stderr and "Traceback" not in proc.stderr
    report = {h["host"]: h for h in json.loads(proc.stdout)["hosts"]}
    assert report["healthy"]["status"] == "ok"
    assert report["frozen"]["status"] == "unreachable"
    vms = json.loads(_corral(home, "vms", "--host", "healthy", "-o", "json").stdout)
    assert marker_vm in {v["name"] for v in vms}


def test_metrics_collect_one_cycle_ends_with_exit_5(two_hosts: tuple[Path, int]) -> None:
    home, pid = two_hosts
    proc = _frozen(pid, home, "metrics", "collect", "--cycles", "1", "--interval", "1s")
    assert proc.returncode == 5, proc.stderr
    assert "frozen" in proc.stderr and "Traceback" not in proc.stderr
    errors = proc.stdout.split("errors:", 1)[1]
    assert "frozen" in errors and "healthy" not in errors


def test_frozen_host_answers_again_after_sigcont(two_hosts: tuple[Path, int]) -> None:
    """The freeze above left the daemon usable: the next sync reaches both hosts."""
    home, pid = two_hosts
    _frozen(pid, home, "sync")
    again = _corral(home, "sync", "-o", "json")
    assert again.returncode == 0, again.stderr
    assert {h["status"] for h in json.loads(again.stdout)["hosts"]} == {"ok"}


def _stuck_threads(inv: Inventory) -> list[str]:
    """The threads of this inventory's host calls that are still running."""
    mine = f"corral-host:{inv.scope}"
    return [t.name for t in threading.enumerate() if t.name.startswith(mine)]


def _sync_guarded(inv: Inventory) -> SyncReport:
    """inv.sync() in a thread, so that a sync that hangs fails the test instead of hanging it."""
    got: list[SyncReport] = []
    worker = threading.Thread(target=lambda: got.append(inv.sync()), daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert got, "sync did not return"
    return got[0]


def test_a_server_keeps_one_stuck_read_per_host_until_it_wakes(
    tmp_path: Path, realhost_uris: list[str]
) -> None:
    """In a long-running process (the API server) a frozen host never piles up threads: the
    next sync does not call it again while its read is stuck, and the stuck read ends by
    itself once the host answers."""
    db = Database(f"sqlite:///{tmp_path / 'corral.db'}")
    db.migrate()
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(timeout_s=3.0))
    inv.add_host("healthy", realhost_uris[0])
    inv.add_host("frozen", realhost_uris[1])
    pid = _daemon_pid(realhost_uris[1])
    os.kill(pid, signal.SIGSTOP)
    try:
        first = {h.host: h for h in _sync_guarded(inv).hosts}
        second = {h.host: h for h in _sync_guarded(inv).hosts}
        stuck = _stuck_threads(inv)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert first["healthy"].status == second["healthy"].status == "ok"
    assert first["frozen"].error == "the host did not answer within 3 s."
    assert second["frozen"].error == "the host has not yet answered an earlier request."
    assert len(stuck) == 1 and stuck[0].endswith(":frozen")
    for _ in range(int(HANG_GUARD_S * 10)):  # the daemon answers again: the stuck read ends
        if not _stuck_threads(inv):
            break
        time.sleep(0.1)
    assert _stuck_threads(inv) == []
    assert {h.status for h in _sync_guarded(inv).hosts} == {"ok"}
    inv.close()
    db.dispose()


@pytest.fixture
def frozen_host_vm(
    two_hosts: tuple[Path, int], realhost_env: RealhostEnv, libvirt_conns: list[Any]
) -> Iterator[str]:
    """A defined (never started) domain on the host to be frozen, known to Corral by a sync."""
    home, _pid = two_hosts
    name = f"corral-hung-act-{uuidlib.uuid4().hex[:8]}"
    dom = libvirt_conns[1].defineXML(
        guest_xml(name, kernel=realhost_env.kernel, initrd=realhost_env.initrd)
    )
    try:
        synced = _corral(home, "sync", "--host", "frozen")
        assert synced.returncode == 0, synced.stderr
        yield name
    finally:
        # A start the frozen daemon had queued runs when it wakes, after Corral gave up on it:
        # the guest must not outlive the test as a transient domain.
        with contextlib.suppress(libvirt.libvirtError):
            dom.destroy()
        dom.undefine()


def test_vm_set_on_a_frozen_host_ends_with_exit_5(
    two_hosts: tuple[Path, int], frozen_host_vm: str
) -> None:
    """A metadata write to a frozen host used to wait for as long as the host stayed frozen."""
    home, pid = two_hosts
    proc = _frozen(pid, home, "vm", "set", frozen_host_vm, "--owner", "alice")
    assert proc.returncode == 5, proc.stderr
    assert "host frozen did not answer" in proc.stderr and "Traceback" not in proc.stderr
    shown = json.loads(_corral(home, "vm", "show", frozen_host_vm, "-o", "json").stdout)
    assert shown["owner"] is None  # the store took nothing the host did not confirm


@pytest.mark.parametrize("action", ["start", "set_metadata"])
def test_actions_on_a_host_that_froze_after_connecting_raise_unreachable(
    two_hosts: tuple[Path, int], frozen_host_vm: str, action: str
) -> None:
    """A long-running process (the API server, the reclamation executor) keeps its connections:
    a host that freezes after the connection was opened used to hold a power action or a
    metadata write for as long as it stayed frozen."""
    from corral.errors import HostUnreachableError

    home, pid = two_hosts
    db = Database(f"sqlite:///{home / 'corral.db'}")
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(timeout_s=3.0))
    uuid = inv.find_vm(frozen_host_vm).uuid
    assert inv.open_host("frozen").read_vm(uuid) is not None  # the pooled connection is open
    raised: list[BaseException] = []

    def act() -> None:
        try:
            if action == "start":
                inv.open_host("frozen").start(uuid)
            else:
                inv.set_metadata(frozen_host_vm, {"owner": "alice"})
        except BaseException as exc:
            raised.append(exc)

    os.kill(pid, signal.SIGSTOP)
    try:
        worker = threading.Thread(target=act, daemon=True)
        worker.start()
        worker.join(HANG_GUARD_S)
        assert not worker.is_alive(), f"{action} did not return"
    finally:
        os.kill(pid, signal.SIGCONT)
    assert len(raised) == 1 and isinstance(raised[0], HostUnreachableError), raised
    assert "host frozen did not answer within 3 s" in str(raised[0])
    assert inv.find_vm(frozen_host_vm).owner is None
    db.dispose()
