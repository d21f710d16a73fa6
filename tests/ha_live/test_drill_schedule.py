"""Scheduled drills run by the leading HA manager, on test-driver hosts, with a clock in hand:
due once per period, only on the host the policy allows, only in the drill hours, never
while a host is in maintenance, never two at once (a manual drill is refused meanwhile),
each recorded as a drill run with its report; the fence agent really powers the host off.
Each scheduled run leaves its report as files in the folder the settings name, the same
HTML and JSON a manual drill writes with --report-html/--report-json.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from corral.config import Settings
from corral.errors import ConflictError
from corral.inventory.service import Inventory
from corral.services import ha_drill_report
from corral.services.ha_drill import DrillService
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy
from corral.store import ha_drills, ha_maintenance, ha_state
from tests.api.support import Api, api_fixture, settings_fixture  # noqa: F401 - fixtures

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
AGENT = Path(__file__).resolve().parents[1] / "ha_sim" / "agents" / "power_agent.py"
T0 = datetime(2026, 12, 6, 2, 10, tzinfo=UTC).timestamp()


class Clock:
    """The manager's and the drill's clock; the drill's sleep moves it on."""

    def __init__(self, t: float) -> None:
        self.t = t
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, s: float) -> None:
        with self._lock:
            self.t += s


@pytest.fixture
def hosts(inventory: Inventory, tmp_path: Path) -> Inventory:
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    for host in ("host-a", "host-b"):
        inventory.add_host(host, f"test://{nodes / f'{host}.xml'}")
    return inventory


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_manager_drills_by_the_schedule_and_never_two_at_once(
    hosts: Inventory, tmp_path: Path
) -> None:
    power = tmp_path / "bmc-b"
    power.mkdir()
    (power / "power").write_text("on")
    (power / "mode").write_text("normal")
    secret = tmp_path / "ipmi.pass"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    agent = {
        "name": "power", "method": "agent", "command": [sys.executable, str(AGENT)],
        "options": {"ip": str(power), "username": "admin", "password": {"file": str(secret)}},
        "timeout_s": 20,
    }  # fmt: skip
    reports = tmp_path / "reports"
    settings = Settings(home=tmp_path / "home", ha_drill_reports=reports)
    schedule = {"every_h": 24, "hours_utc": [2]}
    policy = parse_policy(
        {"fence": {"host-b": [agent]}, "drills": {"allow": ["host-b"], "timeout_s": 5,
                                                   "schedule": schedule}},
        settings,
    )  # fmt: skip
    clock = Clock(T0)
    manager = HALiveService(hosts, settings, policy=policy, instance="t", clock=clock)
    assert manager.drills is not None
    manager.drills.sleep = clock.sleep
    db = hosts.db

    first = manager.round().events
    assert [(e.kind, e.host, e.detail) for e in first if e.kind.startswith("drill")] == [
        ("drill_scheduled", "host-b", "never drilled")
    ]
    assert ha_drills.is_running(db, "default")
    with pytest.raises(ConflictError, match="Another drill is running"):
        DrillService(hosts, settings, policy=policy, clock=clock).run("host-b")
    assert manager.drills.thread is not None
    manager.drills.thread.join(timeout=60)
    assert (power / "power").read_text() == "off"  # the agent did fail the host
    [run] = ha_drills.runs(db, "default")
    # the test-driver host does not really die, so its VMs are not recovered: RTO missed
    assert (run.host, run.scheduled, run.outcome) == ("host-b", True, "missed")
    assert run.ended_at is not None and not ha_drills.is_running(db, "default")
    _assert_report_files(hosts, reports, [run.id])
    (power / "power").write_text("on")

    # within the period: nothing; a day later but a host in maintenance: nothing
    clock.t = T0 + 3600
    assert not [e for e in manager.round().events if e.kind.startswith("drill")]
    assert manager.drills.decide(manager.manager.state).why.startswith("next due at")
    clock.t = T0 + 86400
    ha_maintenance.enter(db, "default", "host-a", "cli:x")
    assert not [e for e in manager.round().events if e.kind.startswith("drill")]
    assert manager.drills.decide(manager.manager.state).why == "host host-a is in maintenance"
    ha_maintenance.leave(db, "default", "host-a")
    # ... outside the drill hours: nothing; back in them: the allowed host again
    clock.t = T0 + 86400 + 3 * 3600
    assert not [e for e in manager.round().events if e.kind.startswith("drill")]
    clock.t = T0 + 2 * 86400
    again = [e for e in manager.round().events if e.kind.startswith("drill")]
    assert [(e.kind, e.host) for e in again] == [("drill_scheduled", "host-b")]
    manager.drills.thread.join(timeout=60)
    runs = ha_drills.runs(db, "default")
    assert [r.host for r in runs] == ["host-b", "host-b"] and runs[0].outcome == "missed"
    logged = [e["kind"] for e in ha_state.events(db, "default")]
    assert logged.count("drill_scheduled") == 2
    _assert_report_files(hosts, reports, sorted(r.id for r in runs))
    manager.close()


def _assert_report_files(inventory: Inventory, folder: Path, run_ids: list[int]) -> None:
    """One HTML and one JSON file per scheduled run, each what `corral ha drill-report ID
    --report-html/--report-json` writes for it (the stored report, not a placeholder)."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"drill-{i}.{ext}" for i in run_ids for ext in ("html", "json")
    )
    for run_id in run_ids:
        view = ha_drill_report.drill_report(inventory.db, run_id)
        assert view.report is not None and view.report.host == "host-b"
        assert (folder / f"drill-{run_id}.html").read_text() == ha_drill_report.to_html(view)
        assert (folder / f"drill-{run_id}.json").read_text() == ha_drill_report.to_json(view) + "\n"
        assert "host-b" in (folder / f"drill-{run_id}.html").read_text()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_drill_runs_listed_over_rest_and_a_drill_refused_while_one_runs(
    hosts: Inventory, api: Api
) -> None:
    db = hosts.db
    assert api.get("/api/v1/ha/drills").json()["items"] == []
    run_id = ha_drills.begin(db, "default", "host-b", True, datetime.now(UTC))
    job = api.job("/api/v1/ha/drills", {"host": "host-a"})
    assert job["state"] == "failed" and "Another drill is running" in job["error"]["detail"]
    ha_drills.end(db, run_id, "met", datetime.now(UTC), {"host": "host-b"})
    [listed] = api.get("/api/v1/ha/drills").json()["items"]
    assert (listed["host"], listed["scheduled"], listed["outcome"]) == ("host-b", True, "met")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_new_leader_closes_the_previous_leaders_scheduled_drill(
    hosts: Inventory, tmp_path: Path
) -> None:
    """A scheduled drill runs in the leader's process: a new leader finds it still 'running'
    (its leader died) and closes it as abandoned, with why, an event and its report files; a
    manual drill (another process's) is left alone."""
    db = hosts.db
    reports = tmp_path / "reports"
    settings = Settings(home=tmp_path / "home", ha_drill_reports=reports)
    policy = parse_policy(
        {"drills": {"allow": ["host-b"], "schedule": {"every_h": 24, "hours_utc": [5]}}}, settings
    )
    clock = Clock(T0)  # 02:10, outside the drill hours: the managers start none themselves
    old = HALiveService(hosts, settings, policy=policy, instance="old", clock=clock)
    old.round()
    old.leadership.release()  # the old leader is gone (its drill thread with it)
    run_id = ha_drills.begin(db, "default", "host-b", True, datetime.fromtimestamp(T0, UTC))
    new = HALiveService(hosts, settings, policy=policy, instance="new", clock=clock)
    events = new.round().events
    [abandoned] = [e for e in events if e.kind == "drill_abandoned"]
    assert abandoned.host == "host-b" and "(old) stopped" in abandoned.detail
    [run] = ha_drills.runs(db, "default")
    assert (run.id, run.outcome, run.ended_at is not None) == (run_id, "abandoned", True)
    assert "(old) stopped" in run.detail and not ha_drills.is_running(db, "default")
    assert json.loads((reports / f"drill-{run_id}.json").read_text())["run"]["outcome"] == (
        "abandoned"
    )
    manual = ha_drills.begin(db, "default", "host-b", False, datetime.fromtimestamp(T0, UTC))
    new.close()
    again = HALiveService(hosts, settings, policy=policy, instance="again", clock=clock)
    assert not [e for e in again.round().events if e.kind == "drill_abandoned"]
    assert ha_drills.is_running(db, "default")  # the manual drill is not the leader's
    ha_drills.end(db, manual, "failed", datetime.fromtimestamp(T0, UTC))
    again.close()
