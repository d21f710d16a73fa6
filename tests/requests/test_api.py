"""Issue 10 items 2-4 over REST: the request routes and quota routes with real tokens, and
many concurrent clients against a real uvicorn server on PostgreSQL that never exceed a quota
and never book the same capacity twice."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from corral.api.app import create_app
from corral.config import Settings
from corral.engines.planning.model import Fleet
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.users import UserService
from corral.store import models as m
from corral.store.db import Database
from tests.inventory.conftest import nodes  # noqa: F401  (fixture)
from tests.requests.conftest import MakeService

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_requests as bench
from probe_concurrency import serving

BODY = {
    "template": "debian-12",
    "count": 4,
    "vcpus": 1,
    "memory_mib": 1024,
    "disk_gb": 10,
    "owner": "alice",
    "department": "red",
    "purpose": "load tests",
    "environment": "dev",
    "lease_days": 30,
}


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def call(self, who: str, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, f"/api/v1{path}", headers=headers, **kw)


@pytest.fixture
def api(inventory: Inventory, make_service: MakeService, tmp_path: Path) -> Iterator[Api]:
    users, store = UserService(inventory.db), TokenStore(inventory.db)
    tokens = {}
    for name, role, dept in (
        ("alice", "requester", "red"),
        ("ann", "approver", "red"),
        ("bert", "approver", "blue"),
        ("root", "admin", "red"),
        ("olga", "operator", "red"),
    ):
        users.add(name, roles=[role], departments=[dept])
        tokens[name] = store.create(f"{name}-token", name)
    app = create_app(
        inventory, store, settings=Settings(home=tmp_path / "home", provision_on_approval=False)
    )
    app.state.requests = make_service()
    yield Api(TestClient(app), tokens)
    app.state.jobs.shutdown(wait=True)


def test_a_request_through_the_api_from_quote_to_approval(api: Api) -> None:
    quote = api.call("alice", "POST", "/request-quotes", json=BODY)
    assert quote.status_code == 200, quote.text
    q = quote.json()
    assert q["capacity"]["status"] == "placed" and len(q["capacity"]["slots"]) == 4
    assert q["evaluation"]["decision"] == "pending" and q["currency"] == "USD"
    made = api.call("alice", "POST", "/requests", json={**BODY, "submit": True})
    assert made.status_code == 201, made.text
    r = made.json()
    assert r["state"] == "pending" and r["monthly_cost"] == q["monthly_cost"]
    assert [x["rule"] for x in r["reasons"]] == ["auto_approve.cost", "approvals"]
    assert api.call("alice", "POST", f"/requests/{r['id']}/approve").status_code == 403
    assert api.call("bert", "GET", f"/requests/{r['id']}").status_code == 404  # blue's approver
    assert api.call("bert", "POST", f"/requests/{r['id']}/approve").status_code == 404
    assert api.call("olga", "POST", f"/requests/{r['id']}/approve").status_code == 403
    ok = api.call("ann", "POST", f"/requests/{r['id']}/approve", json={"note": "go"})
    assert ok.status_code == 200, ok.text
    done = ok.json()
    assert done["state"] == "approved" and done["approvers"] == ["ann"]
    assert [(d["actor"], d["action"]) for d in done["decisions"]] == [
        ("alice", "create"), ("alice", "submit"), ("ann", "approve"),
    ]  # fmt: skip
    again = api.call("ann", "POST", f"/requests/{r['id']}/approve")
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["type"].endswith("conflict")


def test_deny_cancel_and_the_problem_answers(api: Api) -> None:
    r = api.call("alice", "POST", "/requests", json={**BODY, "submit": True}).json()
    no_note = api.call("ann", "POST", f"/requests/{r['id']}/deny", json={"note": ""})
    assert no_note.status_code == 422 and "say why" in no_note.json()["detail"]
    denied = api.call("ann", "POST", f"/requests/{r['id']}/deny", json={"note": "too big"})
    assert denied.json()["state"] == "denied"
    assert api.call("alice", "POST", f"/requests/{r['id']}/cancel").status_code == 409
    draft = api.call("alice", "POST", "/requests", json=BODY).json()
    cancelled = api.call("alice", "POST", f"/requests/{draft['id']}/cancel")
    assert cancelled.json()["state"] == "cancelled"
    missing = dict(BODY)
    del missing["purpose"]
    assert api.call("alice", "POST", "/requests", json=missing).status_code == 422
    blue = api.call("alice", "POST", "/requests", json={**BODY, "department": "blue"})
    assert blue.status_code == 403


def test_quotas_over_the_api_and_department_scoping(api: Api) -> None:
    assert api.call("ann", "PUT", "/quotas/red", json={"vms": 3}).status_code == 403
    put = api.call("root", "PUT", "/quotas/red", json={"vms": 3, "vcpus": 100})
    assert put.status_code == 200, put.text
    assert put.json()["limits"]["vms"] == 3 and put.json()["limits"]["memory_mib"] is None
    api.call("root", "PUT", "/quotas/blue", json={"vms": 1})
    denied = api.call("alice", "POST", "/requests", json={**BODY, "submit": True}).json()
    assert denied["state"] == "denied" and [x["rule"] for x in denied["reasons"]] == ["quota.vms"]
    mine = api.call("alice", "GET", "/quotas").json()["items"]
    assert [q["department"] for q in mine] == ["red"]
    assert api.call("alice", "GET", "/quotas/blue").status_code == 404
    assert api.call("alice", "GET", "/quotas/red").json()["used"]["vms"] == 0
    api.call("bert", "POST", "/requests", json={**BODY, "department": "blue", "owner": "x"})
    listed = api.call("alice", "GET", "/requests").json()["items"]
    assert {x["spec"]["department"] for x in listed} == {"red"}
    everyone = api.call("root", "GET", "/requests").json()["items"]
    assert {x["spec"]["department"] for x in everyone} == {"red", "blue"}
    only = api.call("root", "GET", "/requests", params={"state": "denied"}).json()["items"]
    assert [x["id"] for x in only] == [denied["id"]]
    first = api.call("root", "GET", "/requests", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    rest = api.call("root", "GET", "/requests", params={"cursor": first["next_cursor"]}).json()
    ids = [x["id"] for x in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 2 and rest["next_cursor"] is None


CLIENTS = 200
QUOTA = 20  # red's VMs: reached long before the cluster is full
CAPACITY = 72  # 10 hosts x 16 vCPUs, one host kept for N+1: 144 vCPUs, 2 per VM


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_concurrent_clients_never_exceed_a_quota_nor_book_capacity_twice(
    db: Database, tmp_path: Path
) -> None:
    """200 clients, one submit each at the same moment: 100 for red (quota 20 VMs), 100 for
    blue (no quota), against one cluster with room for 72 such VMs above its N+1 reserve."""
    fleet = bench.make_fleet(10, vms_per_host=0)
    fleet = Fleet(
        tuple(h.__class__(h.name, cores=16, cpu_mhz=2600, memory_mib=65536) for h in fleet.hosts),
        (),
        fleet.settings.__class__(cpu_allocation_ratio=1.0, ha_host_failures=1),
    )
    app, tokens = bench.serve_app(db, fleet, tmp_path)
    from corral.engines.approval import Limits

    app.state.quotas.set("red", Limits(vms=QUOTA), bench.ADMIN)  # type: ignore[attr-defined]
    with serving(app) as url:
        got = bench.storm(url, tokens, ["red", "blue"], CLIENTS, CLIENTS)
    app.state.jobs.shutdown(wait=True)  # type: ignore[attr-defined]
    assert got.errors == [] and len(got.latencies_s) == CLIENTS
    red, blue = bench.approved_in(db, "red"), bench.approved_in(db, "blue")
    print(f"approved red {red}, blue {blue}; {dict(got.states)}; {dict(got.reasons)}")
    assert red == QUOTA  # ~50 red requests come before the cluster is full
    assert red + blue == CAPACITY  # every slot used once: none lost, none booked twice
    assert bench.overbooked(fleet, db, 1) == []
    with db.session() as s:
        booked = s.scalar(select(func.count()).select_from(m.RequestReservation))
        hosts = s.scalar(select(func.count(func.distinct(m.RequestReservation.host))))
    assert booked == CAPACITY and hosts == 10
    assert set(got.reasons) <= {"red:quota.vms", "red:ha_reserve", "blue:ha_reserve"}
    assert got.reasons["red:quota.vms"] > 0 and got.reasons["blue:ha_reserve"] > 0
    assert got.states["red:denied"] == 100 - red and got.states["blue:denied"] == 100 - blue


def test_a_lease_extension_over_the_api(
    api: Api,
    inventory: Inventory,
    nodes: Path,  # noqa: F811
) -> None:
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    vm = next(v for v in inventory.list_vms().items if not v.is_template)
    inventory.set_metadata(vm.uuid, {"department": "red", "expires_on": "2026-07-01"})
    svc = api.client.app.state.requests  # type: ignore[attr-defined]
    svc.extend_lease = lambda uuid, until, actor: inventory.set_metadata(
        uuid, {"expires_on": until}, actor=actor
    )
    path = f"/vms/{vm.uuid}/lease-extensions"
    asked = api.call("alice", "POST", path, json={"days": 14, "reason": "one more sprint"})
    assert asked.status_code == 201, asked.text
    assert asked.json()["kind"] == "extension" and asked.json()["state"] == "pending"
    assert api.call("bert", "POST", path, json={"days": 1, "reason": "x"}).status_code == 404
    done = api.call("ann", "POST", f"/requests/{asked.json()['id']}/approve")
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "provisioned"
    shown = api.call("alice", "GET", f"/vms/{vm.uuid}").json()
    assert shown["expires_on"] == "2026-07-15"
