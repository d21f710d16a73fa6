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
from pathlib import Path

import pytest
from haset import (
    HOSTS,
    DiskWriters,
    HARig,
    ha,  # noqa: F401  (fixtures)
    kinds,
    private_hosts,  # noqa: F401
    wait,
)

from corral.services import ha_live_views
from corral.store import ha_drills
from corral.store.db import Database


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_scheduled_drill_survives_its_leader_being_killed(
    ha: HARig,  # noqa: F811
    db: Database,
    tmp_path: Path,
) -> None:
    inventory = ha.inventory()
    [guest] = ha.boot()
    name = guest.name
    drills = {"allow": ["ha1"], "timeout_s": 120, "schedule": {"every_h": 24}}
    reports = tmp_path / "reports"
    env = ha.run_env(
        {"fence": ha.hosts.fence_spec(), "drills": drills},
        CORRAL_HA_DRILL_REPORTS=str(reports),
    )  # fmt: skip
    with ha.managers(env, 2):
        with DiskWriters(guest.disk) as writers:
            wait("the scheduled drill", lambda: kinds(db, "drill_scheduled"))
            status = ha_live_views.status(db)
            assert status.leader is not None
            leader_pid = int(status.leader.rsplit(":", 1)[1])
            planned = next(
                e.target for e in ha_live_views.plan(db, inventory).entries
                if e.failed_host == "ha1" and e.vm == name
            )  # fmt: skip
            wait("host_failed", lambda: kinds(db, "host_failed"))
            os.kill(leader_pid, signal.SIGKILL)  # the leader dies, its drill thread with it
            [run_id] = [r.id for r in ha_drills.runs(db, "default")]
            wait(  # not left running: closed by the new leader, well before its timeout
                "the drill run closed",
                lambda: not ha_drills.is_running(db, "default"),
                timeout_s=90,
            )
            wait(
                f"{name} running again",
                lambda: any(
                    v.name == name and v.state == "running" and v.host == planned
                    for v in ha_live_views.status(db).vms
                ),
            )
            wait("the guest's second boot", lambda: guest.boots() >= 2)
        new_leader = ha_live_views.status(db).leader
        assert new_leader is not None and int(new_leader.rsplit(":", 1)[1]) != leader_pid
        t = HOSTS.index(planned)
        assert ha.hosts.where(guest.uuid, among=(1, 2)) == [planned]
        assert writers.most == 1  # never two QEMU processes on the disk
        assert ha.hosts.starts_logged(t, name) == 1  # started once, not twice
        assert kinds(db, "vm_recovered") == [name]
        [drill] = ha_drills.runs(db, "default")  # no second drill was started
        assert drill.id == run_id and drill.outcome in ("abandoned", "met", "missed"), drill
        if drill.outcome == "abandoned":
            assert "stopped" in drill.detail and kinds(db, "drill_abandoned") == ["ha1"]
        saved = json.loads((reports / f"drill-{run_id}.json").read_text())
        assert saved["run"]["outcome"] == drill.outcome and saved["run"]["host"] == "ha1"
        assert (reports / f"drill-{run_id}.html").is_file()
        assert kinds(db, "drill_scheduled") == ["ha1"]
