"""The live HA service on test-driver hosts: a round stores state, plan and audited events;
two processes against one PostgreSQL elect one leader, and a SIGKILLed leader hands over."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from corral.config import Settings
from corral.inventory.service import Inventory
from corral.services import ha_live_views
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy
from corral.store import models as m
from corral.store.db import Database
from corral.store.ha_leader import Leadership

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"


@pytest.fixture
def hosts(inventory: Inventory, tmp_path: Path) -> Inventory:
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    for host in ("host-a", "host-b"):
        inventory.add_host(host, f"test://{nodes / f'{host}.xml'}")
    return inventory


def test_a_round_stores_state_plan_and_audited_events(hosts: Inventory, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", ha_grace_s=10, ha_check_interval_s=1)
    service = HALiveService(hosts, settings, policy=parse_policy({}, settings), instance="t:1")
    report = service.round()
    assert report.leader
    assert [e.kind for e in report.events] == ["manager_leader"]
    status = ha_live_views.status(hosts.db)
    assert status.leader == "t:1"
    assert {(h.name, h.state) for h in status.hosts} == {("host-a", "online"), ("host-b", "online")}
    assert status.vms and all(v.state == "running" for v in status.vms)
    plan = ha_live_views.plan(hosts.db, hosts)
    assert plan.source == "stored"
    assert {e.failed_host for e in plan.entries} <= {"host-a", "host-b"}
    assert all(e.target != e.failed_host for e in plan.entries)
    with hosts.db.session() as s:
        query = select(m.AuditEntry).where(m.AuditEntry.target.startswith("ha-event"))
        audited = s.scalars(query).all()
    assert len(audited) == 1  # each event row is an audit entry
    service.close()


def test_plan_before_any_manager_ran_is_computed_from_the_inventory(hosts: Inventory) -> None:
    hosts.sync()
    plan = ha_live_views.plan(hosts.db, hosts)
    assert plan.source == "inventory"
    assert ha_live_views.status(hosts.db).leader is None


def test_sqlite_has_a_single_instance_that_always_leads(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.migrate()
    first, second = Leadership(db, "default"), Leadership(db, "default")
    assert not first.shared and first.acquire() and second.acquire()  # documented: run one


_CONTENDER = """
import sys, time
from corral.store.db import Database
from corral.store.ha_leader import Leadership
lead = Leadership(Database(sys.argv[1]), "election-test")
while True:
    print("leader" if lead.acquire() else "standby", flush=True)
    time.sleep(0.2)
"""


def _last_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_two_processes_elect_one_leader_and_sigkill_hands_over(db: Database) -> None:
    url = db.url.render_as_string(hide_password=False)
    cmd = [sys.executable, "-c", _CONTENDER, url]
    env = dict(os.environ)
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    second: subprocess.Popen[str] | None = None
    try:
        assert _last_line(first) == "leader"
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert [_last_line(second) for _ in range(5)] == ["standby"] * 5
        assert _last_line(first) in ("leader", "")  # still leads (a line may be in flight)
        first.kill()  # SIGKILL: no unlock, the server drops the lock with the connection
        first.wait()
        deadline = time.monotonic() + 30
        line = ""
        while line != "leader" and time.monotonic() < deadline:
            line = _last_line(second)
        assert line == "leader"
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_cli_status_and_plan_as_json(hosts: Inventory, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    HALiveService(hosts, settings, policy=parse_policy({}, settings), instance="t:2").round()
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": hosts.db.url.render_as_string(hide_password=False),
    }
    for command, key in (("status", "hosts"), ("plan", "entries")):
        done = subprocess.run(
            [sys.executable, "-m", "corral", "ha", command, "--output", "json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        doc = json.loads(done.stdout)
        assert doc[key], doc
