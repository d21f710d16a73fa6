"""``corral demo`` evaluates its alert rules on the replayed history and prints what fires;
each alert is checked against the store and the fleet it came from (no count is assumed:
which VMs are busy right now depends on where the replayed traces stand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from corral.config import load_settings
from corral.domain.metrics import EntityKind
from corral.inventory.service import Inventory
from corral.metrics.store import open_store
from corral.services import ha
from corral.services.fleet import live_fleet


def _corral(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_HOME": str(home)}
    env.pop("CORRAL_DATABASE_URL", None)
    env.pop("CORRAL_METRICS_URL", None)
    env.pop("CORRAL_ALERT_RULES", None)
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_the_demo_raises_the_alerts_its_history_and_fleet_hold(tmp_path: Path) -> None:
    home = tmp_path / "home"
    args = ("demo", "--no-serve", "--vms", "40", "--hosts", "2", "--history-days", "1")
    made = _corral(home, *args, "-o", "json")
    assert made.returncode == 0, made.stderr
    raised = json.loads(made.stdout)["alerts"]

    settings = load_settings(env={"CORRAL_HOME": str(home)})
    inv = Inventory.from_settings(settings)
    store = open_store(settings.metrics_url)
    try:
        fresh = store.latest([EntityKind.vm], int(time.time()) - 900)
    finally:
        store.close()
    names = inv.vm_names([r.entity for r in fresh])
    busy = {names[r.entity] for r in fresh if r.metric == "cpu_pct" and r.value > 80}
    assert {a["entity"] for a in raised if a["rule"] == "vm-cpu-high"} == busy
    admission = ha.check(live_fleet(inv).fleet).admission_ok
    assert any(a["rule"] == "ha-guarantee" and a["entity"] == "fleet" for a in raised) == (
        not admission
    )
    assert all(a["severity"] in ("info", "warning", "critical") and a["summary"] for a in raised)

    listed = json.loads(_corral(home, "alerts", "list", "--state", "firing", "-o", "json").stdout)
    assert sorted(a["rule"] for a in listed) == sorted(a["rule"] for a in raised)
