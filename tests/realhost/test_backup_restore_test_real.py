"""Restore tests on a real libvirtd host: the restored VM boots on an isolated network.

A guest with a NIC on the hosts' shared network is backed up; ``corral backup restore-test``
restores its point as a throwaway VM whose NIC is on a new libvirt network with no forward
and no address, boots it (its console shows the guest's ready line), times it against the
tier's RTO, then removes the VM, its disk and the network. The result is stored and listed by
the CLI and the REST API.

A restore test SIGKILLed half-way (its copy booting on the isolated network) has left its
claim: the next round of the backup loop (``corral backup run --every``) finds the claim's
process gone, removes the VM, the network and the restored disk, and records the test as
failed with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
import test_backup_repository_real as shared
from guest import READY_MARKER, GuestFactory, RealhostEnv
from lxml import etree
from test_backup_repository_real import _disk
from tests.api.support import Api, api_fixture, settings_fixture  # noqa: F401 - fixtures

from corral.inventory.service import Inventory
from corral.store import models as m

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)

real_inventory = shared.real_inventory  # fixtures: two real hosts in a fresh inventory
corral_env = shared.corral_env


def _seen_while_running(conn: Any, proc: subprocess.Popen[str]) -> dict[str, str]:
    """While the restore test runs: its VM's NIC network and that network's XML."""
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            if dom.name().startswith("corral-rt-"):
                try:
                    root = etree.fromstring(dom.XMLDesc(0).encode())
                    source = root.find("./devices/interface/source")
                    assert source is not None
                    net = conn.networkLookupByName(str(source.get("network")))
                    nic = root.find("./devices/interface")
                    assert nic is not None
                    return {"vm": dom.name(), "type": str(nic.get("type")),
                            "network": net.name(), "net_xml": net.XMLDesc(0)}  # fmt: skip
                except libvirt.libvirtError:
                    pass  # gone between the listing and the look-up: look again
        time.sleep(0.1)
    raise AssertionError("never saw the restore test's VM running")


def test_a_restore_test_boots_the_copy_on_an_isolated_network_and_cleans_up(
    real_inventory: Inventory, guest_factory: GuestFactory, realhost_env: RealhostEnv,
    corral_env: dict[str, str], libvirt_conns: list[Any], tmp_path: Path,
) -> None:  # fmt: skip
    guest = guest_factory(
        0, disk=_disk(guest_factory.workdir), network=realhost_env.network, wait_ready=True
    )
    real_inventory.sync()
    policy = Path(corral_env["CORRAL_BACKUP_POLICY"])
    policy.write_text(
        "planner: {job_mib_s: 2000}\n"
        f"restore_test: {{boot_marker: '{READY_MARKER}', settle_s: 1, boot_timeout_s: 180}}\n"
    )
    ran = _corral(corral_env, "backup", "run", "--vm", guest.name, "-o", "json")
    assert ran.returncode == 0, ran.stderr
    conn = libvirt_conns[0]
    networks_before = set(conn.listNetworks())

    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "backup", "restore-test", "--vm", guest.name,
         "--disk-dir", str(tmp_path), "-o", "json"],
        env=corral_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = _seen_while_running(conn, proc)
    out, err = proc.communicate(timeout=300)

    assert proc.returncode == 0, err
    [result] = json.loads(out)
    assert result["ok"] is True, result
    assert READY_MARKER in result["detail"]
    assert result["network"] == seen["network"] and seen["type"] == "network"
    net = etree.fromstring(seen["net_xml"].encode())
    assert net.find("forward") is None and net.find("ip") is None  # isolated: no way out
    assert 0 < result["restore_seconds"] < result["seconds"]
    took = f"restore {result['restore_seconds']:.2f} s, restore + boot {result['seconds']:.2f} s"
    print(f"\nrestore test: {took} (RTO {result['rto_minutes']} min)")
    assert (result["rto_minutes"], result["rto_met"]) == (240, True)  # the restart tier
    # nothing is left: the VM, its disk, its network
    assert seen["vm"] not in {d.name() for d in conn.listAllDomains(0)}
    assert set(conn.listNetworks()) == networks_before
    assert not any(tmp_path.glob("corral-rt-*"))
    listed = _corral(corral_env, "backup", "restore-tests", "--vm", guest.name, "-o", "json")
    assert [r["point"] for r in json.loads(listed.stdout)] == [result["point"]]


def test_a_restore_test_through_the_rest_api_is_stored_and_listed(
    real_inventory: Inventory, api: Api, guest_factory: GuestFactory, realhost_env: RealhostEnv
) -> None:
    guest = guest_factory(
        0, disk=_disk(guest_factory.workdir), network=realhost_env.network, wait_ready=True
    )
    real_inventory.sync()
    ran = api.job("/api/v1/backup/run", {"vm": guest.name})
    assert ran["state"] == "succeeded", ran
    tested = api.job("/api/v1/backup/restore-tests", {"vm": guest.name})
    assert tested["state"] == "succeeded", tested
    [result] = tested["result"]["results"]
    assert result["ok"] is True and result["detail"] == "booted", result
    listed = api.get("/api/v1/backup/restore-tests", vm=guest.name).json()["items"]
    assert [(r["point"], r["ok"]) for r in listed] == [(result["point"], True)]
    with real_inventory.db.session() as s:
        tests = s.query(m.AuditEntry).filter(m.AuditEntry.target.like("restore-test:%"))
        audited = tests.order_by(m.AuditEntry.seq).all()
        # the claim written before the test acted, then its result
        assert [(a.action, a.actor) for a in audited] == [("create", "tests"), ("update", "tests")]
    assert guest.disk_path is not None
    assert not any(guest.disk_path.parent.glob("corral-rt-*"))  # its disk went too


def _corral(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def scratch_gone(libvirt_conns: list[Any]) -> Iterator[None]:
    """Whatever the test shows, no scratch VM or network of a restore test stays on the shared
    hosts after it (the hosts' other guests are never touched: only corral-rt-* names that
    this test's run made, which are not there before)."""
    before = [_scratch_names(c) for c in libvirt_conns]
    yield
    for conn, had in zip(libvirt_conns, before, strict=True):
        for dom in conn.listAllDomains(0):
            if dom.name().startswith("corral-rt-") and dom.name() not in had:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        for net in conn.listAllNetworks(0):
            if net.name().startswith("corral-rt-") and net.name() not in had:
                net.destroy()


def _scratch_names(conn: Any) -> set[str]:
    names = {d.name() for d in conn.listAllDomains(0)} | set(conn.listNetworks())
    return {n for n in names if n.startswith("corral-rt-")}


def test_a_restore_test_killed_half_way_is_cleaned_up_by_the_next_loop_round(
    real_inventory: Inventory, guest_factory: GuestFactory, realhost_env: RealhostEnv,
    corral_env: dict[str, str], libvirt_conns: list[Any], tmp_path: Path, scratch_gone: None,
) -> None:  # fmt: skip
    guest = guest_factory(
        0, disk=_disk(guest_factory.workdir), network=realhost_env.network, wait_ready=True
    )
    real_inventory.sync()
    Path(corral_env["CORRAL_BACKUP_POLICY"]).write_text(
        "planner: {job_mib_s: 2000}\n"
        "default_tier: none\n"  # the loop backs up no other guest of the shared hosts
        f"vms: {{{guest.name}: {{tier: restart}}}}\n"
        f"restore_test: {{boot_marker: '{READY_MARKER}', settle_s: 1, boot_timeout_s: 180}}\n"
    )
    ran = _corral(corral_env, "backup", "run", "--vm", guest.name, "-o", "json")
    assert ran.returncode == 0, ran.stderr
    conn = libvirt_conns[0]
    disks = tmp_path / "disks"
    disks.mkdir()

    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "backup", "restore-test", "--vm", guest.name,
         "--disk-dir", str(disks), "-o", "json"],
        env=corral_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = _seen_while_running(conn, proc)  # its copy is booting: half-way
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    name = seen["vm"]
    assert name == seen["network"] and _scratch_names(conn) >= {name}  # left behind
    assert [p.name for p in disks.iterdir()] == [f"{name}-vda.qcow2"]
    listed = _corral(corral_env, "backup", "restore-tests", "--vm", guest.name, "-o", "json")
    [claim] = json.loads(listed.stdout)
    assert (claim["state"], claim["network"]) == ("running", name)

    loop = subprocess.Popen(
        [sys.executable, "-m", "corral", "backup", "run", "--every", "600", "-o", "json"],
        env={**corral_env, "CORRAL_BACKUP_LOOP_RESTORE_TESTS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert loop.stdout is not None
        first = json.loads(loop.stdout.readline())
    finally:
        loop.terminate()
        loop.wait(60)
    assert first["leader"] is True and first["errors"] == {}, first
    assert first["backups"] == {"outcomes": []}  # the guest's point is fresh; no other is due
    [recovered] = first["restore_tests"]["recovered"]
    assert (recovered["network"], recovered["ok"], recovered["state"]) == (name, False, "ended")
    assert recovered["detail"].startswith("the restore test's process ended before the test did")
    assert f"removed scratch VM {name}" in recovered["detail"]
    assert f"removed isolated network {name}" in recovered["detail"]
    assert first["restore_tests"]["tested"] == []  # the killed test was this VM's: not due yet
    print(f"\nkilled restore test, cleaned up by the loop: {recovered['detail']}")
    # nothing is left: the VM, its disk, its console, its network
    assert name not in _scratch_names(conn)
    assert list(disks.iterdir()) == []
    assert guest.disk_path is not None
    assert not any(guest.console_log.parent.glob(f"{name}*"))
    listed = _corral(corral_env, "backup", "restore-tests", "--vm", guest.name, "-o", "json")
    assert [(r["state"], r["ok"], r["network"]) for r in json.loads(listed.stdout)] == [
        ("ended", False, name)
    ]
