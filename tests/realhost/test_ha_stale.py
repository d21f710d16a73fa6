"""A host comes back after its guest was recovered elsewhere: the manager undefines the old
definition it still holds, so the guest can never be started there a second time.

A PRIVATE set of three hosts (see test_ha_live.py). ha1 is failed by fence_freeze.py: its
guest's QEMU dies and its daemon is frozen (SIGSTOP); after the recovery the daemon is
thawed, as a host that boots again, with the guest's persistent definition on disk.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pytest
from cryptography.fernet import Fernet
from guest import RealhostEnv
from test_ha_live import HOSTS, PrivateHosts, _fence_spec, private_hosts  # noqa: F401
from test_ha_maintenance import _guest, _where

from corral.config import Settings
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy
from corral.store.db import Database

FREEZE = Path(__file__).with_name("fence_freeze.py")


def _power(hosts: PrivateHosts, action: str) -> None:
    stdin = f"action={action}\nhost_dir={hosts.host_dir(0)}\n".encode()
    assert subprocess.run([sys.executable, str(FREEZE)], input=stdin, check=False).returncode == 0


def _rounds_until(service: HALiveService, kind: str, limit: int) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for _ in range(limit):
        seen += [(e.kind, e.host or "") for e in service.round().events]
        if any(k == kind for k, _ in seen):
            return seen
        time.sleep(1)
    raise AssertionError(f"no {kind} after {limit} rounds: {seen}")


def _running_on_others(hosts: PrivateHosts, uuid: str) -> list[str]:
    """Where the guest runs among ha2 and ha3 (a frozen ha1 would hang any client)."""
    found = []
    for name, uri in zip(HOSTS[1:], hosts.uris[1:], strict=True):
        conn = libvirt.open(uri)
        try:
            found += [n for d in conn.listAllDomains() if d.UUIDString() == uuid and d.isActive()
                      for n in (name,)]  # fmt: skip
        finally:
            conn.close()
    return found


def _defined_on_ha1(hosts: PrivateHosts, uuid: str) -> bool:
    conn = libvirt.open(hosts.uris[0])
    try:
        return any(d.UUIDString() == uuid for d in conn.listAllDomains())
    finally:
        conn.close()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_old_definition_is_undefined_when_the_dead_host_comes_back(
    private_hosts: PrivateHosts,  # noqa: F811
    realhost_env: RealhostEnv,
    db: Database,
    tmp_path: Path,
) -> None:
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, private_hosts.uris, strict=True):
        inventory.add_host(name, uri)
    dom, _console = _guest(private_hosts, realhost_env, tmp_path)
    uuid = dom.UUIDString()
    settings = Settings(home=tmp_path / "home", ha_grace_s=3, ha_check_interval_s=1)
    fence = _fence_spec(private_hosts)
    fence["ha1"][0]["command"] = [sys.executable, str(FREEZE)]
    manager = HALiveService(inventory, settings, policy=parse_policy({"fence": fence}, settings))
    try:
        manager.round()
        _power(private_hosts, "off")
        seen = _rounds_until(manager, "vm_recovered", limit=60)
        assert ("host_fenced", "ha1") in seen
        [target] = _running_on_others(private_hosts, uuid)

        _power(private_hosts, "on")  # ha1 boots again: its daemon holds the old definition
        assert _defined_on_ha1(private_hosts, uuid)
        seen = _rounds_until(manager, "vm_stale_removed", limit=30)
        assert ("host_back", "ha1") in seen and ("vm_stale_removed", "ha1") in seen
        assert not _defined_on_ha1(private_hosts, uuid)
        assert _where(private_hosts, uuid) == [target]
    finally:
        manager.close()
        with contextlib.suppress(Exception):
            _power(private_hosts, "on")
        for uri in private_hosts.uris:
            with contextlib.suppress(libvirt.libvirtError):
                conn = libvirt.open(uri)
                for d in conn.listAllDomains():
                    if d.UUIDString() == uuid:
                        if d.isActive():
                            d.destroy()
                        d.undefine()
