"""A host comes back after its guest was recovered elsewhere: the manager undefines the old
definition it still holds, so the guest can never be started there a second time.

A PRIVATE set of three hosts (haset.py). ha1 is failed by fence_freeze.py: its guest's QEMU
dies and its daemon is frozen (SIGSTOP); after the recovery the daemon is thawed, as a host
that boots again, with the guest's persistent definition on disk.
"""

from __future__ import annotations

import contextlib
import sys

import libvirt
import pytest
from haset import FREEZE, HARig, PrivateHosts, kind_hosts, rounds_until

from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy


def _defined_on_ha1(hosts: PrivateHosts, uuid: str) -> bool:
    conn = libvirt.open(hosts.uris[0])
    try:
        return any(d.UUIDString() == uuid for d in conn.listAllDomains())
    finally:
        conn.close()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_old_definition_is_undefined_when_the_dead_host_comes_back(ha: HARig) -> None:
    inventory = ha.inventory()
    [guest] = ha.boot()
    settings = ha.settings(grace_s=3)
    fence = ha.hosts.fence_spec()
    fence["ha1"][0]["command"] = [sys.executable, str(FREEZE)]
    manager = HALiveService(inventory, settings, policy=parse_policy({"fence": fence}, settings))
    try:
        manager.round()
        assert ha.hosts.fence(0, "off", agent=FREEZE) == 0
        seen = kind_hosts(rounds_until(manager, "vm_recovered", limit=60))
        assert ("host_fenced", "ha1") in seen
        # where it runs among ha2 and ha3 (a frozen ha1 would hang any client)
        [target] = ha.hosts.where(guest.uuid, among=(1, 2))

        # ha1 boots again: its daemon holds the old definition
        assert ha.hosts.fence(0, "on", agent=FREEZE) == 0
        assert _defined_on_ha1(ha.hosts, guest.uuid)
        seen = kind_hosts(rounds_until(manager, "vm_stale_removed", limit=30))
        assert ("host_back", "ha1") in seen and ("vm_stale_removed", "ha1") in seen
        assert not _defined_on_ha1(ha.hosts, guest.uuid)
        assert ha.hosts.where(guest.uuid) == [target]
    finally:
        manager.close()
        with contextlib.suppress(Exception):
            ha.hosts.fence(0, "on", agent=FREEZE)  # never leave a daemon frozen
