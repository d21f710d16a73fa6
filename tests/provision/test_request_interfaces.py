"""Approved request -> VM through the interfaces: the CLI makes the VMs in the command (with its
steps on stderr), survives a SIGKILL half-way (the rerun makes no second VM), and the API makes
them in a job answered 202."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.domain.access import Principal, Role
from corral.domain.requests import RequestState, Size
from corral.engines.approval import load_rules
from corral.engines.costing import load_cost_model
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.fleet import live_fleet
from corral.services.quotas import Prices
from corral.services.requests import RequestService, RequestSpec
from corral.services.templates import TemplateService
from corral.services.users import UserService
from corral.store.db import Database
from tests.freshdb import migrated_home
from tests.provision.conftest import HOST, NODE, TEMPLATE, domain_names

RULES = Path(__file__).parents[1] / "requests" / "data" / "rules.yaml"
ALICE = Principal("alice", frozenset({Role.requester}), frozenset({"red"}))


def _rules(tmp_path: Path) -> Path:
    text = RULES.read_text().replace("ha_failures: 1", "ha_failures: 0")
    text = text.replace("auto_approve: {max_monthly_cost: 200}", "auto_approve: null")
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def _env(home: Path, rules: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CORRAL_HOME": str(home),
        "CORRAL_NODE_DIR": str(home.parent),
        "CORRAL_REQUEST_RULES": str(rules),
        "CORRAL_PROVISION_ON_APPROVAL": "1",
    }
    env.pop("CORRAL_DATABASE_URL", None)
    return env


def _corral(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "corral", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == code, (args, done.stdout, done.stderr)
    return done


def _pending(home: Path, rules: Path, count: int) -> int:
    """A pending request of alice's (another user than the one running the commands)."""
    inv = Inventory.from_settings(Settings(home, f"sqlite:///{home / 'corral.db'}"))
    try:
        service = RequestService(
            inv.db,
            load_rules(rules),
            Prices.of(load_cost_model()),
            lambda: live_fleet(inv).fleet,
        )
        spec = RequestSpec("debian-12", count, Size(1, 512, 1.0), "alice", "red", "ci", "dev", 30)
        view = service.create(spec, ALICE, submit=True)
        assert view.state is RequestState.pending, view.reasons
        return view.id
    finally:
        inv.db.dispose()


def _state(home: Path, request_id: int) -> tuple[str, int]:
    with sqlite3.connect(home / "corral.db", timeout=30) as conn:
        (state,) = conn.execute(
            "SELECT state FROM vm_requests WHERE id = ?", (request_id,)
        ).fetchone()
        (made,) = conn.execute(
            "SELECT count(*) FROM request_vms WHERE request_id = ? AND state = 'created'",
            (request_id,),
        ).fetchone()
    return state, made


@pytest.fixture
def cli(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    home = migrated_home(tmp_path / "home")
    node = tmp_path / "host-p.xml"
    shutil.copy(NODE, node)
    rules = _rules(tmp_path)
    env = _env(home, rules)
    _corral(env, "hosts", "add", HOST, f"test://{node}")
    _corral(env, "sync")
    _corral(env, "template", "add", TEMPLATE.name, "--pool", "images", "--volume", TEMPLATE.volume)
    return env, home, node


def test_the_last_approval_on_the_command_line_makes_the_vms(
    cli: tuple[dict[str, str], Path, Path],
) -> None:
    env, home, _node = cli
    request_id = _pending(home, Path(env["CORRAL_REQUEST_RULES"]), 2)
    done = _corral(env, "request", "approve", str(request_id), "-o", "json")
    row = json.loads(done.stdout)[0]
    assert row["state"] == "provisioned" and len(row["vms"]) == 2
    assert f"debian-12-r{request_id}-2: made on {HOST}" in done.stderr
    vms = {v["name"]: v for v in json.loads(_corral(env, "vms", "-o", "json").stdout)}
    mine = {n: v for n, v in vms.items() if n.startswith(f"debian-12-r{request_id}-")}
    assert sorted(v["uuid"] for v in mine.values()) == sorted(row["vms"])
    assert {(v["owner"], v["department"]) for v in mine.values()} == {("alice", "red")}


def test_a_killed_provisioning_is_finished_by_the_next_run_without_a_second_vm(
    cli: tuple[dict[str, str], Path, Path],
) -> None:
    env, home, node = cli
    request_id = _pending(home, Path(env["CORRAL_REQUEST_RULES"]), 5)
    _corral(env, "request", "approve", str(request_id), "--no-provision")
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "request", "provision", str(request_id)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and _made(home, request_id) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state, made = _state(home, request_id)
    assert state == "provisioning" and 2 <= made < 5, (state, made)  # killed half-way
    again = json.loads(_corral(env, "request", "provision", str(request_id), "-o", "json").stdout)[
        0
    ]
    assert again["state"] == "provisioned" and len(set(again["vms"])) == 5
    names = sorted(n for n in domain_names(node) if n.startswith(f"debian-12-r{request_id}-"))
    assert names == [f"debian-12-r{request_id}-{n}" for n in range(1, 6)]


def _made(home: Path, request_id: int) -> int:
    try:
        return _state(home, request_id)[1]
    except sqlite3.OperationalError:
        return 0


@pytest.fixture
def api(
    inventory: Inventory, node_for_api: Path, tmp_path: Path
) -> Iterator[tuple[Any, dict[str, str]]]:
    inventory.add_host(HOST, f"test://{node_for_api}")
    inventory.sync()
    TemplateService(inventory.db).add(TEMPLATE)
    users, store = UserService(inventory.db), TokenStore(inventory.db)
    tokens = {}
    for name, role in (("alice", "requester"), ("ann", "approver"), ("olga", "operator")):
        users.add(name, roles=[role], departments=["red"])
        tokens[name] = store.create(f"{name}-token", name)
    settings = Settings(home=tmp_path / "home", request_rules=_rules(tmp_path))
    app = create_app(inventory, store, settings=settings)
    yield TestClient(app), tokens
    app.state.jobs.shutdown(wait=True)


@pytest.fixture
def node_for_api(tmp_path: Path) -> Path:
    dest = tmp_path / "host-p.xml"
    shutil.copy(NODE, dest)
    return dest


def _wait(client: Any, headers: dict[str, str], href: str) -> dict[str, Any]:
    for _ in range(600):
        job = client.get(href, headers=headers).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {href} did not finish")


def test_an_approval_through_the_api_provisions_in_a_job(
    api: tuple[Any, dict[str, str]], db: Database, node_for_api: Path
) -> None:
    client, tokens = api
    as_ = {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    body = {
        "template": "debian-12",
        "count": 1,
        "vcpus": 1,
        "memory_mib": 512,
        "disk_gb": 1,
        "owner": "alice",
        "department": "red",
        "purpose": "ci",
        "environment": "dev",
        "lease_days": 30,
        "submit": True,
    }
    made = client.post("/api/v1/requests", json=body, headers=as_["alice"])
    assert made.status_code == 201 and made.json()["state"] == "pending", made.text
    request_id = made.json()["id"]
    early = client.post(f"/api/v1/requests/{request_id}/provision", headers=as_["olga"])
    assert early.status_code == 409 and "only an approved request" in early.json()["detail"]
    approved = client.post(f"/api/v1/requests/{request_id}/approve", headers=as_["ann"])
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    job = _wait(client, as_["olga"], approved.headers["Location"])
    assert job["state"] == "succeeded" and job["kind"] == "request.provision", job
    assert job["result"]["state"] == "provisioned"
    seen = client.get(f"/api/v1/requests/{request_id}", headers=as_["alice"]).json()
    assert seen["state"] == "provisioned" and len(seen["provisioned_vms"]) == 1
    assert f"debian-12-r{request_id}-1" in domain_names(node_for_api)
    again = client.post(f"/api/v1/requests/{request_id}/provision", headers=as_["olga"])
    assert again.status_code == 409  # provisioned: nothing to make, no job
    denied = client.post(f"/api/v1/requests/{request_id}/provision", headers=as_["ann"])
    assert denied.status_code == 403


def test_a_blueprint_from_the_command_line_is_requested_and_made_as_one(
    cli: tuple[dict[str, str], Path, Path], tmp_path: Path
) -> None:
    env = cli[0]
    (tmp_path / "lab.yaml").write_text(
        "name: lab\n"
        "tiers:\n"
        "  - {name: db, template: debian-12, memory_mib: 512, order: 1}\n"
        "  - {name: web, template: debian-12, count: 2, memory_mib: 512, order: 2}\n"
    )
    added = json.loads(
        _corral(env, "blueprint", "add", str(tmp_path / "lab.yaml"), "-o", "json").stdout
    )
    assert added[0]["tiers"] == "db: 1 x debian-12, web: 2 x debian-12" and added[0]["vms"] == 3
    listed = json.loads(_corral(env, "blueprint", "list", "-o", "json").stdout)
    assert [b["name"] for b in listed] == ["lab"]
    ask = ["--owner", "alice", "-d", "red", "--purpose", "ci", "-e", "dev", "--lease-days", "7"]
    quote = json.loads(_corral(env, "request", "quote", "-b", "lab", *ask, "-o", "json").stdout)
    assert len(quote["placement"]) == 3
    both = _corral(env, "request", "create", "-b", "lab", "-t", "debian-12", *ask, code=2)
    assert "not both" in both.stderr and "Traceback" not in both.stderr
    made = json.loads(
        _corral(env, "request", "create", "-b", "lab", *ask, "--submit", "-o", "json").stdout
    )[0]
    assert made["template"] == "blueprint lab" and made["count"] == 3
    assert made["state"] == "pending"  # an approver decides (these rules approve nothing alone)
    _corral(env, "blueprint", "remove", "lab")
    assert json.loads(_corral(env, "blueprint", "list", "-o", "json").stdout) == []


def test_a_blueprint_through_the_api_is_one_request_and_one_job(
    api: tuple[Any, dict[str, str]], node_for_api: Path
) -> None:
    client, tokens = api
    as_ = {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    lab = {
        "name": "lab",
        "tiers": [
            {"name": "db", "template": "debian-12", "memory_mib": 512},
            {"name": "web", "template": "debian-12", "memory_mib": 512, "order": 1},
        ],
    }
    refused = client.post("/api/v1/blueprints", json=lab, headers=as_["alice"])
    assert refused.status_code == 403
    added = client.post("/api/v1/blueprints", json=lab, headers=as_["olga"])
    assert added.status_code == 201, added.text
    shown = client.get("/api/v1/blueprints/lab", headers=as_["alice"]).json()
    assert [t["name"] for t in shown["tiers"]] == ["db", "web"]
    body = {
        "blueprint": "lab",
        "owner": "alice",
        "department": "red",
        "purpose": "ci",
        "environment": "dev",
        "lease_days": 7,
        "submit": True,
    }
    made = client.post("/api/v1/requests", json=body, headers=as_["alice"])
    assert made.status_code == 201 and made.json()["state"] == "pending", made.text
    request_id = made.json()["id"]
    approved = client.post(f"/api/v1/requests/{request_id}/approve", headers=as_["ann"])
    job = _wait(client, as_["olga"], approved.headers["Location"])
    assert job["state"] == "succeeded" and job["result"]["state"] == "provisioned", job
    assert [p["tier"] for p in job["result"]["parts"]] == ["db", "web"]
    assert {f"db-r{request_id}-1", f"web-r{request_id}-1"} <= domain_names(node_for_api)
    gone = client.delete("/api/v1/blueprints/lab", headers=as_["olga"])
    assert gone.status_code == 204
    assert client.get("/api/v1/blueprints/lab", headers=as_["olga"]).status_code == 404


def test_a_unit_is_stopped_and_torn_down_through_the_api_in_jobs(
    api: tuple[Any, dict[str, str]], node_for_api: Path
) -> None:
    client, tokens = api
    as_ = {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    lab = {"name": "lab", "tiers": [{"name": "db", "template": "debian-12", "memory_mib": 512}]}
    assert client.post("/api/v1/blueprints", json=lab, headers=as_["olga"]).status_code == 201
    body = {"blueprint": "lab", "owner": "alice", "department": "red", "purpose": "ci",
            "environment": "dev", "lease_days": 7, "submit": True}  # fmt: skip
    request_id = client.post("/api/v1/requests", json=body, headers=as_["alice"]).json()["id"]
    approved = client.post(f"/api/v1/requests/{request_id}/approve", headers=as_["ann"])
    assert _wait(client, as_["olga"], approved.headers["Location"])["state"] == "succeeded"
    unit = client.get(f"/api/v1/units/{request_id}", headers=as_["alice"]).json()
    assert unit["state"] == "running" and unit["network"].startswith(f"corral-u{request_id}-")
    listed = client.get("/api/v1/units", headers=as_["alice"]).json()["items"]
    assert [u["request_id"] for u in listed] == [request_id]
    for operation, state in (("stop", "stopped"), ("teardown", "torn-down")):
        asked = client.post(f"/api/v1/units/{request_id}/{operation}", headers=as_["alice"])
        assert asked.status_code == 202, asked.text
        job = _wait(client, as_["olga"], asked.headers["Location"])
        assert job["kind"] == "unit.operate" and job["result"]["state"] == state, job
    assert f"db-r{request_id}-1" not in domain_names(node_for_api)
    missing = client.post("/api/v1/units/999/stop", headers=as_["alice"])
    assert missing.status_code == 404
    wrong = client.post(f"/api/v1/units/{request_id}/explode", headers=as_["alice"])
    assert wrong.status_code == 422
