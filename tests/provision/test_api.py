"""The catalog and provisioning over REST: who may, what the answer says, what is audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.domain.access import Role
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.audit import AuditLog
from corral.services.users import UserService
from tests.provision.conftest import HOST, domain_names, volume_names


@pytest.fixture
def api(inventory: Inventory, node: Path, tmp_path: Path) -> Iterator[tuple[TestClient, dict]]:
    inventory.add_host(HOST, f"test://{node}")
    users, store = UserService(inventory.db), TokenStore(inventory.db)
    headers = {}
    for role in (Role.operator, Role.requester):
        users.add(f"{role.value}-1", roles=[role.value], departments=["red"])
        token = store.create(f"{role.value}-token", f"{role.value}-1")
        headers[role.value] = {"Authorization": f"Bearer {token}"}
    app = create_app(inventory, store, settings=Settings(home=tmp_path / "home"))
    yield TestClient(app), headers
    app.state.jobs.shutdown(wait=True)


TEMPLATE = {"name": "debian-12", "pool": "images", "volume": "debian-12.qcow2", "vcpus": 2}
BODY = {
    "name": "api-01",
    "template": "debian-12",
    "host": HOST,
    "owner": "alice",
    "department": "red",
    "expires_on": "2027-02-28",
    "cloud_init": {"hostname": "api01", "user_data": "#cloud-config\npackages: [nginx]\n"},
}


def test_operator_provisions_and_the_creator_is_the_caller(
    api: tuple[TestClient, dict], node: Path, inventory: Inventory
) -> None:
    client, auth = api
    assert (
        client.post("/api/v1/templates", json=TEMPLATE, headers=auth["requester"]).status_code
        == 403
    )
    assert (
        client.post("/api/v1/templates", json=TEMPLATE, headers=auth["operator"]).status_code == 201
    )
    listed = client.get("/api/v1/templates", headers=auth["requester"]).json()
    assert [t["name"] for t in listed["items"]] == ["debian-12"]
    assert (
        client.post("/api/v1/provisions", json=BODY, headers=auth["requester"]).status_code == 403
    )
    forged = {**BODY, "created_by": "mallory"}
    assert (
        client.post("/api/v1/provisions", json=forged, headers=auth["operator"]).status_code == 422
    )
    answer = client.post("/api/v1/provisions", json=BODY, headers=auth["operator"])
    assert answer.status_code == 201
    result = answer.json()
    assert result["status"] == "succeeded" and result["uuid"]
    vm = inventory.find_vm("api-01")
    assert (vm.created_by, vm.owner, vm.expires_on) == (
        "operator-1",
        "alice",
        date(2027, 2, 28),
    )
    entries = AuditLog(inventory.db).list(user="operator-1")
    assert {e.target.split(":")[0] for e in entries} >= {"template", "provision"}


def test_failed_provision_answers_with_the_reason_and_leaves_nothing(
    api: tuple[TestClient, dict], node: Path
) -> None:
    client, auth = api
    client.post("/api/v1/templates", json=TEMPLATE, headers=auth["operator"])
    body = {**BODY, "name": "api-02", "disk_mode": "copy", "disk_gib": 500}
    result = client.post("/api/v1/provisions", json=body, headers=auth["operator"]).json()
    assert result["status"] == "failed" and "Not enough free space" in result["reason"]
    assert volume_names(node, "images") == {"debian-12.qcow2"}
    assert "api-02" not in domain_names(node)
    again = {**body, "name": "api-03"}
    posted = client.post("/api/v1/provisions", json=again, headers=auth["operator"])
    assert posted.status_code == 201
    history = client.get("/api/v1/provisions", headers=auth["operator"]).json()["items"]
    assert [(r["name"], r["status"]) for r in history[:2]] == [
        ("api-03", "failed"),
        ("api-02", "failed"),
    ]
    first = client.get("/api/v1/provisions?limit=1", headers=auth["operator"]).json()
    assert [r["id"] for r in first["items"]] == [history[0]["id"]] and first["next_cursor"]
    rest = client.get(
        f"/api/v1/provisions?limit=100&cursor={first['next_cursor']}", headers=auth["operator"]
    ).json()
    assert [r["id"] for r in rest["items"]] == [r["id"] for r in history[1:]]
    gone = client.delete("/api/v1/templates/debian-12", headers=auth["operator"])
    assert gone.status_code == 204
    assert client.get("/api/v1/templates/debian-12", headers=auth["operator"]).status_code == 404
