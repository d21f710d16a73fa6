"""A scheduled drill whose leader is killed mid-drill, on real libvirtd hosts.

Two `corral ha run` processes share one PostgreSQL; the policy schedules drills of ha1, so
the leader starts one at its first round: the fence agent kills ha1's daemon and guest (the
pulled cable). Once the leader has declared ha1 failed it is killed with SIGKILL, its drill
thread with it. Checked: the standby takes over and the guest runs again on its planned
host, started once (one QEMU on its disk at any time, one start in the target's log, one
vm_recovered); the drill run does not stay "running" (before, it did until its timeout plus
five minutes, blocking every drill meanwhile): the new leader closes it as abandoned with
why, logs it, and writes its report files; and no second drill is started.

A PRIVATE set of three hosts (see test_ha_live.py), never the shared one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid as uuidlib
from pathlib import Path

import libvirt
import pytest
import yaml
from cryptography.fernet import Fernet
from guest import READY_MARKER, RealhostEnv, guest_xml, make_disk, wait_for_console
from test_ha_live import (  # noqa: F401
    HOSTS,
    DiskWriters,
    PrivateHosts,
    _diagnosis,
    _fence_spec,
    _kinds,
    _starts_logged,
    _wait,
    private_hosts,
)

from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services import ha_live_views
from corral.store import ha_drills
from corral.store.db import Database


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_scheduled_drill_survives_its_leader_being_killed(
    private_hosts: PrivateHosts,  # noqa: F811
    realhost_env: RealhostEnv,
    db: Database,
    tmp_path: Path,
) -> None:
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, private_hosts.uris, strict=True):
        inventory.add_host(name, uri)
    name = f"corral-hadk-{uuidlib.uuid4().hex[:8]}"
    disk = make_disk(tmp_path / f"{name}.qcow2", 16)
    console = tmp_path / f"{name}.console.log"
    xml = guest_xml(
        name, kernel=realhost_env.kernel, initrd=realhost_env.initrd, disk_path=disk,
        console_log=console, disk_cache="none",
    )  # fmt: skip
    conns = [libvirt.open(uri) for uri in private_hosts.uris]
    dom = conns[0].defineXML(xml)
    dom.create()
    wait_for_console(console, timeout_s=120)

    policy = tmp_path / "ha.yaml"
    drills = {"allow": ["ha1"], "timeout_s": 120, "schedule": {"every_h": 24}}
    policy.write_text(yaml.safe_dump({"fence": _fence_spec(private_hosts), "drills": drills}))
    reports = tmp_path / "reports"
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": str(db.url.render_as_string(hide_password=False)),
        "CORRAL_HA_POLICY": str(policy),
        "CORRAL_HA_GRACE": "4",
        "CORRAL_HA_CHECK_INTERVAL": "1",
        "CORRAL_HA_DRILL_REPORTS": str(reports),
    }
    run = [sys.executable, "-m", "corral", "ha", "run"]
    logs = [(tmp_path / f"manager{i}.log").open("wb") for i in range(2)]
    procs = [subprocess.Popen(run, env=env, stdout=log, stderr=log) for log in logs]
    try:
        with DiskWriters(disk) as writers:
            _wait("the scheduled drill", lambda: _kinds(db, "drill_scheduled"))
            status = ha_live_views.status(db)
            assert status.leader is not None
            leader_pid = int(status.leader.rsplit(":", 1)[1])
            planned = next(
                e.target for e in ha_live_views.plan(db, inventory).entries
                if e.failed_host == "ha1" and e.vm == name
            )  # fmt: skip
            _wait("host_failed", lambda: _kinds(db, "host_failed"))
            os.kill(leader_pid, signal.SIGKILL)  # the leader dies, its drill thread with it
            [run_id] = [r.id for r in ha_drills.runs(db, "default")]
            _wait(  # not left running: closed by the new leader, well before its timeout
                "the drill run closed",
                lambda: not ha_drills.is_running(db, "default"),
                timeout_s=90,
            )
            _wait(
                f"{name} running again",
                lambda: any(
                    v.name == name and v.state == "running" and v.host == planned
                    for v in ha_live_views.status(db).vms
                ),
            )
            _wait(
                "the guest's second boot",
                lambda: console.read_text(errors="replace").count(READY_MARKER) >= 2,
            )
        new_leader = ha_live_views.status(db).leader
        assert new_leader is not None and int(new_leader.rsplit(":", 1)[1]) != leader_pid
        t = HOSTS.index(planned)
        assert conns[t].lookupByUUIDString(dom.UUIDString()).isActive()
        assert writers.most == 1  # never two QEMU processes on the disk
        assert _starts_logged(private_hosts, t, name) == 1  # started once, not twice
        assert _kinds(db, "vm_recovered") == [name]
        [drill] = ha_drills.runs(db, "default")  # no second drill was started
        assert drill.id == run_id and drill.outcome in ("abandoned", "met", "missed"), drill
        if drill.outcome == "abandoned":
            assert "stopped" in drill.detail and _kinds(db, "drill_abandoned") == ["ha1"]
        saved = json.loads((reports / f"drill-{run_id}.json").read_text())
        assert saved["run"]["outcome"] == drill.outcome and saved["run"]["host"] == "ha1"
        assert (reports / f"drill-{run_id}.html").is_file()
        assert _kinds(db, "drill_scheduled") == ["ha1"]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_diagnosis(db, tmp_path)}") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for c in conns[1:]:
            for d in c.listAllDomains():
                if d.UUIDString() == dom.UUIDString():
                    if d.isActive():
                        d.destroy()
                    d.undefine()
        for c in conns:
            with contextlib.suppress(libvirt.libvirtError):
                c.close()
        for log in logs:
            log.close()
