"""The storage heartbeat on real hosts: a host whose daemon dies while its heartbeat writer
(`corral ha heartbeat`, a real process) goes on is isolated, not fenced, and its guest keeps
running; once the writer is killed too, the host is fenced and the guest restarted by the
plan, on one host only.

A PRIVATE set of three hosts (see test_ha_live.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
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


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


def _rounds_until(service: HALiveService, kind: str, limit: int = 40) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for _ in range(limit):
        seen += [(e.kind, e.host or "") for e in service.round().events]
        if any(k == kind for k, _ in seen):
            return seen
        time.sleep(1)
    raise AssertionError(f"no {kind} after {limit} rounds: {seen}")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_isolated_by_its_heartbeat_then_fenced_when_the_heartbeat_stops(
    private_hosts: PrivateHosts,  # noqa: F811
    realhost_env: RealhostEnv,
    db: Database,
    tmp_path: Path,
) -> None:
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, private_hosts.uris, strict=True):
        inventory.add_host(name, uri)
    dom, _console = _guest(private_hosts, realhost_env, tmp_path)
    uuid, name = dom.UUIDString(), dom.name()
    qemu = int((private_hosts.host_dir(0) / f"run/libvirt/qemu/{name}.pid").read_text())
    beats = tmp_path / "heartbeat"
    beats.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-m", "corral", "ha", "heartbeat", "ha1", "--dir", str(beats),
         "--interval", "0.5"],
        env={**os.environ, "CORRAL_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    settings = Settings(home=tmp_path / "home", ha_grace_s=3, ha_check_interval_s=1)
    spec = {"fence": _fence_spec(private_hosts), "heartbeat_dir": str(beats)}
    manager = HALiveService(inventory, settings, policy=parse_policy(spec, settings))
    try:
        manager.round()
        daemon = int((private_hosts.host_dir(0) / "run/libvirt/libvirtd.pid").read_text())
        os.kill(daemon, signal.SIGKILL)
        seen = _rounds_until(manager, "host_isolated")
        assert ("host_isolated", "ha1") in seen
        for _ in range(5):  # well past the grace: still isolated, never fenced
            seen += [(e.kind, e.host or "") for e in manager.round().events]
            time.sleep(1)
        assert not {k for k, h in seen if h == "ha1"} & {"host_failed", "fence_begin"}
        assert _alive(qemu) and _where(private_hosts, uuid) == []  # ha1 cannot be asked

        writer.send_signal(signal.SIGKILL)
        writer.wait()
        seen = _rounds_until(manager, "vm_recovered", limit=60)
        assert ("host_failed", "ha1") in seen and ("host_fenced", "ha1") in seen
        assert not _alive(qemu)
        [where] = _where(private_hosts, uuid)
        assert where in ("ha2", "ha3")
    finally:
        manager.close()
        with contextlib.suppress(ProcessLookupError):
            writer.kill()
        for uri in private_hosts.uris[1:]:
            with contextlib.suppress(libvirt.libvirtError):
                conn = libvirt.open(uri)
                for d in conn.listAllDomains():
                    if d.UUIDString() == uuid:
                        if d.isActive():
                            d.destroy()
                        d.undefine()
