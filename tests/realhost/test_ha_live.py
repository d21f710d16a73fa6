"""The live HA manager on real libvirtd hosts: a host dies, its guest runs elsewhere, once.

A PRIVATE set of three hosts (haset.py), never the shared one. Two `corral ha run` processes
share one PostgreSQL. A host is failed by the test fence agent itself (SIGKILL of its
libvirtd and QEMU: the pulled cable); the leader is killed with SIGKILL once it has declared
the host failed, so the standby takes over mid-recovery.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any

import pytest
from haset import HOSTS, DiskWriters, HARig, kinds, rounds, rounds_until, wait

from corral.notify.mailer import OutboxMailer
from corral.services import ha_live_views
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_dead_host_guest_restarts_by_plan_once_despite_leader_kill(ha: HARig) -> None:
    inventory = ha.inventory()
    [guest] = ha.boot()
    env = ha.run_env({"fence": ha.hosts.fence_spec()})
    with ha.managers(env, 2) as procs:
        status = wait(
            "a leader watching every host",
            lambda: (
                (s := ha_live_views.status(ha.db)).leader
                and len(s.hosts) == 3
                and any(v.name == guest.name and v.state == "running" for v in s.vms)
                and s
            ),
        )
        target = ha.planned_target(inventory, guest.name)
        assert status.leader is not None
        leader_pid = int(status.leader.rsplit(":", 1)[1])
        assert leader_pid in {p.pid for p in procs}

        with DiskWriters(guest.disk) as writers:
            assert ha.hosts.fence(0, "off") == 0  # the cable is pulled on ha1
            wait("host_failed", lambda: kinds(ha.db, "host_failed"))
            os.kill(leader_pid, signal.SIGKILL)  # the leader dies mid-recovery
            wait(f"{guest.name} running again", lambda: ha.running(guest.name, target))
            # the guest booted again, on its new host: a second ready line
            wait("the guest's second boot", lambda: guest.boots() >= 2)
        assert ha.leader_pid() not in (None, leader_pid)

        t = HOSTS.index(target)
        assert ha.hosts.where(guest.uuid, among=(1, 2)) == [target]
        assert writers.most == 1  # never two QEMU processes on the disk
        assert ha.hosts.starts_logged(t, guest.name) == 1  # started once, not twice
        assert kinds(ha.db, "vm_recovered") == [guest.name]
        locked = subprocess.run(
            ["qemu-img", "info", str(guest.disk)], capture_output=True, text=True
        )
        assert locked.returncode != 0 and "lock" in locked.stderr  # QEMU holds the write lock


def _service(rig: HARig, spec: dict[str, Any], **extra: Any) -> HALiveService:
    settings = rig.settings(grace_s=4, ha_alert_to="ops@example.org")
    policy = parse_policy({"fence": spec, **extra}, settings)
    mailer = OutboxMailer(rig.tmp_path / "outbox")
    return HALiveService(rig.inventory(), settings, policy=policy, mailer=mailer, instance="t")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_unfenceable_host_is_not_recovered_from_and_mails_an_alert(ha: HARig) -> None:
    [guest] = ha.boot()
    spec = ha.hosts.fence_spec(broken=frozenset({"ha1"}))
    service = _service(ha, spec)
    service.round()
    assert ha.hosts.fence(0, "off") == 0  # ha1 dies; its fence agent cannot prove it
    seen = rounds_until(service, "host_unfenceable")
    seen += rounds(service, 3)  # a few more rounds: still nothing is started anywhere
    service.close()
    seen_kinds = [e.kind for e in seen]
    assert "vm_stranded" in seen_kinds and "vm_start" not in seen_kinds
    assert ha.hosts.where(guest.uuid) == []
    subjects = [p.read_text() for p in (ha.tmp_path / "outbox").glob("*.eml")]
    assert any("Subject: Corral HA: host unfenceable ha1" in text for text in subjects)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_isolated_host_keeps_its_guest(ha: HARig) -> None:
    """ha1's daemon is gone but its storage heartbeat goes on: isolated, never fenced."""
    [guest] = ha.boot()
    beats = ha.tmp_path / "heartbeat"
    beats.mkdir()
    spec = ha.hosts.fence_spec()
    service = _service(ha, spec, heartbeat_dir=str(beats))
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            (beats / "ha1").touch()
            time.sleep(0.5)

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    try:
        service.round()
        # only the management daemon: the guest's QEMU lives on
        os.kill(ha.hosts.daemon_pid(0), signal.SIGKILL)
        seen = [e.kind for e in rounds_until(service, "host_isolated")]
        service.close()
    finally:
        stop.set()
        beater.join()
    assert "fence_begin" not in seen and "vm_start" not in seen
    assert DiskWriters(guest.disk).count() == 1  # the guest still runs on ha1, and only there
    assert ha.hosts.where(guest.uuid) == []  # ha1 cannot be asked; no other host runs it
