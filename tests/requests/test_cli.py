"""``corral request`` and ``corral quota``: the real command in its own process, on a synced
test-driver host, with rules from CORRAL_REQUEST_RULES."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from corral.domain.requests import RequestState
from corral.engines.approval import load_rules
from corral.engines.costing import load_cost_model
from corral.engines.planning.model import fleet_from_records
from corral.services.quotas import Prices
from corral.services.requests import RequestService
from corral.store.db import Database
from tests.inventory.conftest import NODES
from tests.requests.conftest import ALICE, DATA, spec

ASK = [
    "-t",
    "debian-12",
    "--vcpus",
    "1",
    "--memory-mib",
    "1024",
    "--disk-gb",
    "10",
    "--owner",
    "alice",
    "-d",
    "red",
    "--purpose",
    "tests",
    "-e",
    "dev",
    "--lease-days",
    "30",
]


def _env(home: Path, rules: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CORRAL_HOME": str(home),
        "CORRAL_NODE_DIR": str(home.parent),
        "CORRAL_REQUEST_RULES": str(rules),
        "CORRAL_PROVISION_ON_APPROVAL": "0",  # these tests stop at approved
    }
    env.pop("CORRAL_DATABASE_URL", None)
    return env


def _corral(env: dict[str, str], *args: str, code: int = 0) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "corral", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == code, (args, done.stdout, done.stderr)
    if code:
        return done.stderr
    return json.loads(done.stdout) if "json" in args else done.stdout


def test_requests_and_quotas_from_the_command_line(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    rules = tmp_path / "rules.yaml"
    rules.write_text((DATA / "rules.yaml").read_text().replace("ha_failures: 1", "ha_failures: 0"))
    env = _env(tmp_path / "home", rules)
    _corral(env, "hosts", "add", "host-a", f"test://{nodes / 'host-a.xml'}")
    _corral(env, "sync")
    quota = _corral(env, "quota", "set", "red", "--vms", "6", "-o", "json")
    assert {r["dimension"]: r["limit"] for r in quota}["vms"] == 6
    quote = _corral(env, "request", "quote", *ASK, "-n", "4", "-o", "json")
    assert quote["decision"] == "pending" and quote["capacity"] == "placed"
    assert quote["monthly_cost"] == "218.60 USD" and len(quote["placement"]) == 4
    mine = _corral(env, "request", "create", *ASK, "-n", "4", "--submit", "-o", "json")[0]
    assert mine["state"] == "pending" and mine["approvals"] == "0/1"
    own = _corral(env, "request", "approve", str(mine["id"]), code=2)
    assert "never decides their own request" in own and "Traceback" not in own
    theirs = _service(tmp_path).create(spec(count=2), ALICE, submit=True)  # 2 approved at once
    assert theirs.state is RequestState.approved
    over = _corral(env, "request", "create", *ASK, "-n", "5", "--submit", "-o", "json")[0]
    assert over["state"] == "denied" and over["reasons"].startswith("quota vms: 2 used + 5")
    shown = _corral(env, "request", "show", str(theirs.id), "-o", "json")
    assert shown["state"] == "approved" and len(shown["placement"]) == 2
    waiting = _service(tmp_path).create(spec(count=4), ALICE, submit=True)
    assert waiting.state is RequestState.pending
    denied = _corral(env, "request", "deny", str(waiting.id), "--note", "no", "-o", "json")
    assert denied[0]["state"] == "denied"
    listed = _corral(env, "request", "list", "--state", "denied", "-o", "json")
    assert sorted(r["id"] for r in listed) == sorted([waiting.id, over["id"]])
    assert _corral(env, "quota", "show", "red", "-o", "json")[3]["used"] == 2
    cancelled = _corral(env, "request", "cancel", str(theirs.id), "-o", "json")
    assert cancelled[0]["state"] == "cancelled"
    assert _corral(env, "quota", "show", "red", "-o", "json")[3]["used"] == 0
    assert "expired 0 request(s)" in _corral(env, "request", "expire")
    audit = _corral(env, "audit", "list", "--target", f"request:{mine['id']}", "-o", "json")
    assert {a["actor"] for a in audit} == {_os_user()}


def _service(tmp_path: Path) -> RequestService:
    """The commands' database, used by another user (alice asks), placing on host-a's size."""
    host = {
        "name": "host-a",
        "cores": 16,
        "threads_per_core": 2,
        "cpu_mhz": 2400,
        "memory_mib": 131072,
    }
    fleet = fleet_from_records([host], [])
    db = Database(f"sqlite:///{tmp_path / 'home' / 'corral.db'}")
    rules = load_rules(tmp_path / "rules.yaml")
    return RequestService(db, rules, Prices.of(load_cost_model()), lambda: fleet)


def _os_user() -> str:
    import getpass

    return getpass.getuser()
