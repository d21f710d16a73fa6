"""A scheduled drill whose leader is killed mid-drill, on real libvirtd hosts.

Two `corral ha run` processes share one PostgreSQL; the policy schedules drills of ha1, so
the leader starts one at its first round: the fence agent kills ha1's daemon and guest (the
pulled cable). Once the leader has declared ha1 failed it is killed with SIGKILL, its drill
thread with it. Checked: the standby takes over and the guest runs again on its planned
host, started once (one QEMU on its disk at any time, one start in the target's log, one
vm_recovered); the drill run does not stay "running" (before, it did until its timeout plus
five minutes, blocking every drill meanwhile): the new leader closes it as abandoned with
why, logs it, and writes its report files; and no second drill is started.

A PRIVATE set of three hosts (haset.py), never the shared one.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from haset import HOSTS, DiskWriters, HARig, kinds, wait

from corral.store import ha_drills


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_scheduled_drill_survives_its_leader_being_killed(ha: HARig) -> None:
    inventory = ha.inventory()
    [guest] = ha.boot()
    name = guest.name
    drills = {"allow": ["ha1"], "timeout_s": 120, "schedule": {"every_h": 24}}
    reports = ha.tmp_path / "reports"
    env = ha.run_env(
        {"fence": ha.hosts.fence_spec(), "drills": drills},
        CORRAL_HA_DRILL_REPORTS=str(reports),
    )  # fmt: skip
    with ha.managers(env, 2):
        with DiskWriters(guest.disk) as writers:
            wait("the scheduled drill", lambda: kinds(ha.db, "drill_scheduled"))
            leader_pid = ha.leader_pid()
            assert leader_pid is not None
            planned = ha.planned_target(inventory, name)
            wait("host_failed", lambda: kinds(ha.db, "host_failed"))
            os.kill(leader_pid, signal.SIGKILL)  # the leader dies, its drill thread with it
            [run_id] = [r.id for r in ha_drills.runs(ha.db, "default")]
            wait(  # not left running: closed by the new leader, well before its timeout
                "the drill run closed",
                lambda: not ha_drills.is_running(ha.db, "default"),
                timeout_s=90,
            )
            wait(f"{name} running again", lambda: ha.running(name, planned))
            wait("the guest's second boot", lambda: guest.boots() >= 2)
        assert ha.leader_pid() not in (None, leader_pid)
        t = HOSTS.index(planned)
        assert ha.hosts.where(guest.uuid, among=(1, 2)) == [planned]
        assert writers.most == 1  # never two QEMU processes on the disk
        assert ha.hosts.starts_logged(t, name) == 1  # started once, not twice
        assert kinds(ha.db, "vm_recovered") == [name]
        [drill] = ha_drills.runs(ha.db, "default")  # no second drill was started
        assert drill.id == run_id and drill.outcome in ("abandoned", "met", "missed"), drill
        if drill.outcome == "abandoned":
            assert "stopped" in drill.detail and kinds(ha.db, "drill_abandoned") == ["ha1"]
        saved = json.loads((reports / f"drill-{run_id}.json").read_text())
        assert saved["run"]["outcome"] == drill.outcome and saved["run"]["host"] == "ha1"
        assert (reports / f"drill-{run_id}.html").is_file()
        assert kinds(ha.db, "drill_scheduled") == ["ha1"]
