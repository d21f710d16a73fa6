"""Planning on the live inventory: the record mapping, and the CLI after a real test-driver sync."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corral.cli.plan import inventory_records
from corral.engines.planning import fleet_from_records

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"


def test_inventory_records_mapping() -> None:
    hosts = [
        {"name": "a", "cpus": 16, "sockets": 2, "cores_per_socket": 4, "threads_per_core": 2,
         "mhz": 2400, "memory_mib": 65536, "cpu_model": "Skylake", "cpu_features": ["avx2"]},
        {"name": "never-synced", "cpus": None, "mhz": None, "memory_mib": None},
    ]  # fmt: skip
    vms = [
        {"name": "web", "host": "a", "state": "running", "vcpus": 2, "memory_mib": 4096,
         "protection_tier": "replicated"},
        {"name": "web", "host": "a", "state": "shutoff", "vcpus": 1, "memory_mib": 512,
         "uuid": "1234"},
        {"name": "tpl", "host": "a", "state": "shutoff", "vcpus": 1, "memory_mib": 512,
         "is_template": True},
        {"name": "lost", "host": "never-synced", "state": "running", "vcpus": 1, "memory_mib": 1},
    ]  # fmt: skip
    fleet = fleet_from_records(*inventory_records(hosts, vms))
    (host,) = fleet.hosts
    assert (host.cores, host.threads_per_core, host.cpu_model) == (8, 2, "Skylake")
    assert [v.name for v in fleet.vms] == ["web#0", "web#1234"]
    assert fleet.vms[0].protection.value == "replicated" and fleet.vms[1].state.value == "shutoff"


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_NODE_DIR": str(home.parent)}
    env.pop("CORRAL_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_live_inventory_end_to_end(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    home = tmp_path / "home"
    assert _run(home, "hosts", "add", "host-a", f"test://{nodes / 'host-a.xml'}").returncode == 0
    assert _run(home, "sync").returncode == 0
    ha = _run(home, "ha", "check", "--live", "--policy", "slots", "--output", "json")
    assert ha.returncode == 0, ha.stderr
    report = json.loads(ha.stdout)
    assert set(report["slots_per_host"]) == {"host-a"}
    plan = _run(home, "plan", "consolidate", "--live", "--mode", "heuristic", "--output", "json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["active_hosts_after"] == 1
    both = _run(home, "ha", "check", "--live", "-f", "x.yaml")
    assert both.returncode == 2 and "exactly one" in both.stderr
