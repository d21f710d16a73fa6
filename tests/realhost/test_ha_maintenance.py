"""Maintenance mode on real libvirtd hosts: a running guest is live-migrated off a host by
the plan and keeps running (same boot, its console still answers); the emptied host is not
fenced while its daemon is stopped; a migration libvirt refuses leaves the guest where it
was and the host 'entering'.

A PRIVATE set of three hosts (see test_ha_live.py), never the shared one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import libvirt
import pytest
from cryptography.fernet import Fernet
from guest import READY_MARKER, RealhostEnv, guest_xml, make_disk, wait_for_console
from test_ha_live import HOSTS, PrivateHosts, _fence_spec, private_hosts  # noqa: F401

from corral.config import Settings
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services import ha_live_views
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy
from corral.services.ha_maintenance import MaintenanceService
from corral.store import ha_state
from corral.store.db import Database


def _guest(hosts: PrivateHosts, env: RealhostEnv, tmp_path: Path) -> tuple[Any, Path]:
    name = f"corral-hamaint-{uuidlib.uuid4().hex[:8]}"
    disk = make_disk(tmp_path / f"{name}.qcow2", 16)
    console = tmp_path / f"{name}.console.log"
    xml = guest_xml(
        name, kernel=env.kernel, initrd=env.initrd, disk_path=disk, console_log=console,
        disk_cache="none",
    )  # fmt: skip
    dom = libvirt.open(hosts.uris[0]).defineXML(xml)
    dom.create()
    wait_for_console(console, timeout_s=120)
    return dom, console


def _where(hosts: PrivateHosts, uuid: str) -> list[str]:
    """The hosts on which the guest runs now."""
    found = []
    for name, uri in zip(HOSTS, hosts.uris, strict=True):
        with contextlib.suppress(libvirt.libvirtError):
            conn = libvirt.open(uri)
            try:
                found += [
                    name for d in conn.listAllDomains() if d.UUIDString() == uuid and d.isActive()
                ]
            finally:
                conn.close()
    return found


def _rounds(service: HALiveService, n: int) -> list[tuple[str, str | None]]:
    seen: list[tuple[str, str | None]] = []
    for _ in range(n):
        seen += [(e.kind, e.host) for e in service.round().events]
        time.sleep(1)
    return seen


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_maintenance_migrates_the_guest_live_and_the_empty_host_is_not_fenced(
    private_hosts: PrivateHosts,  # noqa: F811
    realhost_env: RealhostEnv,
    db: Database,
    tmp_path: Path,
) -> None:
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, private_hosts.uris, strict=True):
        inventory.add_host(name, uri)
    dom, console = _guest(private_hosts, realhost_env, tmp_path)
    uuid = dom.UUIDString()
    settings = Settings(home=tmp_path / "home", ha_grace_s=3, ha_check_interval_s=1)
    spec = {"fence": _fence_spec(private_hosts)}
    refused = parse_policy({**spec, "migration": {"uri": "tcp://127.0.0.1"}}, settings)
    policy = parse_policy(
        {**spec, "migration": {"uri": "tcp://127.0.0.1", "unsafe": True}}, settings
    )
    manager = HALiveService(inventory, settings, policy=policy, instance="t")
    try:
        manager.round()
        planned = next(
            e.target for e in ha_live_views.plan(db, inventory).entries
            if e.failed_host == "ha1" and e.vm == dom.name()
        )  # fmt: skip

        # libvirt refuses (local disks, no 'unsafe'): the guest stays, the host 'entering'
        first = MaintenanceService(inventory, settings, policy=refused).enter("ha1")
        assert first.state == "entering"
        [move] = first.moves
        assert (move.vm, move.outcome, move.target) == (dom.name(), "failed", planned)
        assert "still running on its host" in move.detail and "unsafe" in move.detail.lower()
        assert _where(private_hosts, uuid) == ["ha1"]
        kinds = _rounds(manager, 1)
        assert ("host_maintenance_enter", "ha1") in kinds

        # now it may: a live migration to the planned target, the same boot goes on
        report = MaintenanceService(inventory, settings, policy=policy).enter("ha1")
        assert report.state == "in"
        [move] = report.moves
        assert (move.outcome, move.target) == ("moved", planned)
        assert move.seconds is not None and move.seconds > 0
        assert _where(private_hosts, uuid) == [planned]
        assert console.read_text(errors="replace").count(READY_MARKER) == 1  # never rebooted

        # ha1's daemon stops for the work: the manager neither suspects nor fences it
        daemon = int((private_hosts.host_dir(0) / "run/libvirt/libvirtd.pid").read_text())
        os.kill(daemon, signal.SIGKILL)
        kinds = _rounds(manager, 8)  # well past the 3 s grace period at 1 s a round
        assert ("vm_migrated", planned) in kinds
        on_ha1 = {k for k, h in kinds if h == "ha1"}
        assert not on_ha1 & {"host_suspect", "host_failed", "fence_begin", "host_fenced"}
        status = ha_live_views.status(db)
        assert {h.name: h.maintenance for h in status.hosts}["ha1"] is True
        assert {v.name: v.host for v in status.vms}[dom.name()] == planned

        # the guest still answers on its console, on its new host: the power button
        moved = libvirt.open(private_hosts.uris[HOSTS.index(planned)]).lookupByUUIDString(uuid)
        moved.shutdown()
        deadline = time.monotonic() + 60
        while "power button pressed" not in console.read_text(errors="replace"):
            assert time.monotonic() < deadline, "the migrated guest did not answer"
            time.sleep(0.5)

        out = MaintenanceService(inventory, settings, policy=policy).exit("ha1")
        assert out.state == "out"
        assert ("host_maintenance_exit", "ha1") in _rounds(manager, 1)
        assert any(e["kind"] == "vm_migrated" for e in ha_state.events(db, "default"))
    finally:
        manager.close()
        for uri in private_hosts.uris[1:]:
            with contextlib.suppress(libvirt.libvirtError):
                conn = libvirt.open(uri)
                for d in conn.listAllDomains():
                    if d.UUIDString() == uuid:
                        if d.isActive():
                            d.destroy()
                        d.undefine()
