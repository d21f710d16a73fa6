"""The storage heartbeat on real hosts: a host whose daemon dies while its heartbeat writer
(`corral ha heartbeat`, a real process) goes on is isolated, not fenced, and its guest keeps
running; once the writer is killed too, the host is fenced and the guest restarted by the
plan, on one host only.

A PRIVATE set of three hosts (haset.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from haset import HARig, kind_hosts, rounds, rounds_until

from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_isolated_by_its_heartbeat_then_fenced_when_the_heartbeat_stops(ha: HARig) -> None:
    inventory = ha.inventory()
    [guest] = ha.boot()
    qemu = int((ha.hosts.host_dir(0) / f"run/libvirt/qemu/{guest.name}.pid").read_text())
    beats = ha.tmp_path / "heartbeat"
    beats.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-m", "corral", "ha", "heartbeat", "ha1", "--dir", str(beats),
         "--interval", "0.5"],
        env={**os.environ, "CORRAL_HOME": str(ha.tmp_path / "home")},
    )  # fmt: skip
    settings = ha.settings(grace_s=3)
    spec = {"fence": ha.hosts.fence_spec(), "heartbeat_dir": str(beats)}
    manager = HALiveService(inventory, settings, policy=parse_policy(spec, settings))
    try:
        manager.round()
        os.kill(ha.hosts.daemon_pid(0), signal.SIGKILL)
        seen = kind_hosts(rounds_until(manager, "host_isolated", limit=40))
        assert ("host_isolated", "ha1") in seen
        seen += kind_hosts(rounds(manager, 5))  # well past the grace: still isolated, not fenced
        assert not {k for k, h in seen if h == "ha1"} & {"host_failed", "fence_begin"}
        assert _alive(qemu) and ha.hosts.where(guest.uuid) == []  # ha1 cannot be asked

        writer.send_signal(signal.SIGKILL)
        writer.wait()
        seen = kind_hosts(rounds_until(manager, "vm_recovered", limit=60))
        assert ("host_failed", "ha1") in seen and ("host_fenced", "ha1") in seen
        assert not _alive(qemu)
        [where] = ha.hosts.where(guest.uuid)
        assert where in ("ha2", "ha3")
    finally:
        manager.close()
        with contextlib.suppress(ProcessLookupError):
            writer.kill()
