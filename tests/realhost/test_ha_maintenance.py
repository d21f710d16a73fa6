"""Maintenance mode on real libvirtd hosts: a running guest is live-migrated off a host by
the plan and keeps running (same boot, its console still answers); the emptied host is not
fenced while its daemon is stopped; a migration libvirt refuses leaves the guest where it
was and the host 'entering'.

A PRIVATE set of three hosts (haset.py), never the shared one.
"""

from __future__ import annotations

import os
import signal

import libvirt
import pytest
from haset import HOSTS, HARig, kind_hosts, rounds, wait

from corral.services import ha_live_views
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy
from corral.services.ha_maintenance import MaintenanceService
from corral.store import ha_state


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_maintenance_migrates_the_guest_live_and_the_empty_host_is_not_fenced(ha: HARig) -> None:
    inventory = ha.inventory()
    [guest] = ha.boot()
    settings = ha.settings(grace_s=3)
    spec = {"fence": ha.hosts.fence_spec()}
    refused = parse_policy({**spec, "migration": {"uri": "tcp://127.0.0.1"}}, settings)
    policy = parse_policy(
        {**spec, "migration": {"uri": "tcp://127.0.0.1", "unsafe": True}}, settings
    )
    manager = HALiveService(inventory, settings, policy=policy, instance="t")
    try:
        manager.round()
        planned = ha.planned_target(inventory, guest.name)

        # libvirt refuses (local disks, no 'unsafe'): the guest stays, the host 'entering'
        first = MaintenanceService(inventory, settings, policy=refused).enter("ha1")
        assert first.state == "entering"
        [move] = first.moves
        assert (move.vm, move.outcome, move.target) == (guest.name, "failed", planned)
        assert "still running on its host" in move.detail and "unsafe" in move.detail.lower()
        assert ha.hosts.where(guest.uuid) == ["ha1"]
        assert ("host_maintenance_enter", "ha1") in kind_hosts(rounds(manager, 1))

        # now it may: a live migration to the planned target, the same boot goes on
        report = MaintenanceService(inventory, settings, policy=policy).enter("ha1")
        assert report.state == "in"
        [move] = report.moves
        assert (move.outcome, move.target) == ("moved", planned)
        assert move.seconds is not None and move.seconds > 0
        assert ha.hosts.where(guest.uuid) == [planned]
        assert guest.boots() == 1  # never rebooted

        # ha1's daemon stops for the work: the manager neither suspects nor fences it
        os.kill(ha.hosts.daemon_pid(0), signal.SIGKILL)
        seen = kind_hosts(rounds(manager, 8))  # well past the 3 s grace period at 1 s a round
        assert ("vm_migrated", planned) in seen
        on_ha1 = {k for k, h in seen if h == "ha1"}
        assert not on_ha1 & {"host_suspect", "host_failed", "fence_begin", "host_fenced"}
        status = ha_live_views.status(ha.db)
        assert {h.name: h.maintenance for h in status.hosts}["ha1"] is True
        assert {v.name: v.host for v in status.vms}[guest.name] == planned

        # the guest still answers on its console, on its new host: the power button
        conn = libvirt.open(ha.hosts.uris[HOSTS.index(planned)])
        conn.lookupByUUIDString(guest.uuid).shutdown()
        wait(
            "the migrated guest to answer",
            lambda: "power button pressed" in guest.console.read_text(errors="replace"),
            timeout_s=60,
        )

        out = MaintenanceService(inventory, settings, policy=policy).exit("ha1")
        assert out.state == "out"
        assert ("host_maintenance_exit", "ha1") in kind_hosts(rounds(manager, 1))
        assert any(e["kind"] == "vm_migrated" for e in ha_state.events(ha.db, "default"))
    finally:
        manager.close()
