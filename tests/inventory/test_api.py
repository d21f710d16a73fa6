"""REST API: pagination, filters, tokens for writes, problem+json for bad input, no half-writes."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from corral.api.app import create_app
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.users import UserService
from tests.inventory.conftest import TEST_NS

CPU_FIELDS = (
    ("mhz", "2000"),
    ("model", "X"),
    ("nodes", "1"),
    ("sockets", "2"),
    ("cores", "16"),
    ("threads", "2"),
    ("active", "64"),
)


def _big_node(path: Path, n: int) -> None:
    """A host with ``n`` small VMs; every third one is off, every fifth owned by 'ops'."""
    node = etree.Element("node")
    cpu = etree.SubElement(node, "cpu")
    for tag, val in CPU_FIELDS:
        etree.SubElement(cpu, tag).text = val
    etree.SubElement(node, "memory").text = str(1024 * 1024 * 1024)
    for i in range(n):
        d = etree.SubElement(node, "domain", type="test")
        etree.SubElement(d, "name").text = f"vm-{i:04d}"
        etree.SubElement(d, "uuid").text = str(uuidlib.UUID(int=i + 1))
        if i % 5 == 0:
            md = etree.SubElement(d, "metadata")
            vm = etree.SubElement(md, "{urn:corral:vm:1}vm")
            etree.SubElement(vm, "{urn:corral:vm:1}owner").text = "ops"
        etree.SubElement(d, "memory", unit="MiB").text = str(512 + i)
        etree.SubElement(d, "vcpu").text = str(1 + i % 4)
        etree.SubElement(etree.SubElement(d, "os"), "type").text = "hvm"
        etree.SubElement(d, f"{{{TEST_NS}}}runstate").text = "5" if i % 3 == 0 else "1"
    path.write_bytes(etree.tostring(node))


@pytest.fixture
def api(inventory: Inventory, nodes: Path) -> tuple[TestClient, str]:
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    _big_node(nodes / "big.xml", 250)
    inventory.add_host("big", f"test://{nodes / 'big.xml'}")
    inventory.sync()
    UserService(inventory.db).add("tests", roles=["admin"])  # the actor recorded is the user
    token = TokenStore(inventory.db).create("tests", "tests")
    # Reads of VMs and events need a token too (they name owners): the client carries one.
    return TestClient(create_app(inventory), headers={"Authorization": f"Bearer {token}"}), token


def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    return body


def test_cursor_pagination_walks_every_vm_once(api: tuple[TestClient, str]) -> None:
    client, _ = api
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 40, "sort": "memory_mib", "order": "desc"}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/vms", params=params).json()
        # not counted (issue 16: a count costs more than the page); /vms/count counts
        assert body["total"] is None
        seen += [v["uuid"] for v in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 7 and len(seen) == len(set(seen)) == 253
    memory = [
        v["memory_mib"]
        for v in client.get(
            "/api/v1/vms", params={"limit": 1000, "sort": "memory_mib", "order": "desc"}
        ).json()["items"]
    ]
    assert memory == sorted(memory, reverse=True)


def test_filters(api: tuple[TestClient, str]) -> None:
    client, _ = api
    big_off = {"host": "big", "state": "shutoff"}
    got = client.get("/api/v1/vms", params={**big_off, "limit": 1000, "count": True}).json()
    assert got["total"] == len(got["items"]) == 84 and all(
        v["state"] == "shutoff" and v["host"] == "big" for v in got["items"]
    )

    def counted(**params: Any) -> int:
        body = client.get("/api/v1/vms/count", params=params).json()
        assert body["exact"] is True
        return int(body["count"])

    assert counted(**big_off) == 84
    assert counted(owner="ops") == 50
    assert counted(no_owner=True, host="big") == 200
    assert counted(q="vm-012") == 10
    assert counted(tag="web") == 1


def test_one_vm_with_history_and_events(api: tuple[TestClient, str], inventory: Inventory) -> None:
    client, _ = api
    web = inventory.find_vm("web-01")
    body = client.get(f"/api/v1/vms/{web.uuid}").json()
    assert body["name"] == "web-01" and body["history"][0]["kind"] == "created"
    events = client.get("/api/v1/events", params={"vm": web.uuid}).json()["items"]
    assert [e["kind"] for e in events] == ["created"]
    assert events[0]["vm_name"] == "web-01" and events[0]["vm_uuid"] == web.uuid
    _problem(client.get(f"/api/v1/vms/{uuidlib.UUID(int=99999)}"), 404, "not-found")


def test_writes_need_a_valid_token(api: tuple[TestClient, str], inventory: Inventory) -> None:
    client, token = api
    del client.headers["Authorization"]
    uuid = inventory.find_vm("web-01").uuid
    url = f"/api/v1/vms/{uuid}/metadata"
    _problem(client.patch(url, json={"owner": "mallory"}), 401, "unauthorized")
    _problem(
        client.patch(
            url, json={"owner": "mallory"}, headers={"Authorization": "Bearer crl_00000000_nope"}
        ),
        401,
        "unauthorized",
    )
    TokenStore(inventory.db).revoke("tests")
    _problem(
        client.patch(url, json={"owner": "mallory"}, headers={"Authorization": f"Bearer {token}"}),
        401,
        "unauthorized",
    )
    _problem(client.post("/api/v1/sync"), 401, "unauthorized")
    assert inventory.find_vm(uuid).owner == "alice"


def test_metadata_update_with_token(api: tuple[TestClient, str], inventory: Inventory) -> None:
    client, token = api
    uuid = inventory.find_vm("db-01").uuid
    resp = client.patch(
        f"/api/v1/vms/{uuid}/metadata",
        json={"owner": "dana", "environment": "prod", "tags": ["db"], "expires_on": "2027-05-01"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["owner"], body["environment"], body["tags"], body["expires_on"]) == (
        "dana",
        "prod",
        ["db"],
        "2027-05-01",
    )
    assert body["history"][-1]["details"]["by"] == "api:tests"


@pytest.mark.parametrize(
    "payload",
    [
        {"owner": "x" * 257},
        {"owner": "<script>alert(1)</script>"},
        {
            "purpose": "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>"
        },
        {"colour": "blue"},
        {"environment": "production-ish"},
        {"expires_on": "soon"},
        {"tags": ["ok", ""]},
        {"tags": "not-a-list"},
    ],
)
def test_bad_metadata_is_422_and_nothing_is_written(
    api: tuple[TestClient, str], inventory: Inventory, nodes: Path, payload: dict[str, Any]
) -> None:
    client, token = api
    before = inventory.find_vm("web-01")
    node_before = (nodes / "host-a.xml").read_bytes()
    resp = client.patch(
        f"/api/v1/vms/{before.uuid}/metadata",
        json=payload,
        headers={"Authorization": f"Bearer {token}"},
    )
    _problem(resp, 422, "validation-failed")
    assert inventory.find_vm("web-01") == before
    assert (nodes / "host-a.xml").read_bytes() == node_before


@pytest.mark.parametrize("bad", ["not-a-uuid", "0a000000-0000-4000-8000-00000000000g", "1" * 64])
def test_malformed_uuid_is_422(api: tuple[TestClient, str], bad: str) -> None:
    client, token = api
    _problem(client.get(f"/api/v1/vms/{bad}"), 422, "validation-failed")
    _problem(
        client.patch(
            f"/api/v1/vms/{bad}/metadata",
            json={"owner": "x"},
            headers={"Authorization": f"Bearer {token}"},
        ),
        422,
        "validation-failed",
    )


def test_bad_query_and_cursor(api: tuple[TestClient, str]) -> None:
    client, _ = api
    _problem(client.get("/api/v1/vms", params={"limit": 0}), 422, "validation-failed")
    _problem(client.get("/api/v1/vms", params={"sort": "password"}), 422, "validation-failed")
    _problem(client.get("/api/v1/vms", params={"cursor": "!!garbage!!"}), 422, "validation-failed")
    _problem(client.get("/api/v1/vms", params={"host": "h" * 300}), 422, "validation-failed")
    _problem(client.get("/api/v1/nothing-here"), 404, "not-found")


def test_add_host_through_api(api: tuple[TestClient, str], nodes: Path) -> None:
    client, token = api
    auth = {"Authorization": f"Bearer {token}"}
    _problem(
        client.post("/api/v1/hosts", json={"name": "x", "uri": "vmware://x"}, headers=auth),
        422,
        "uri-unsupported",
    )
    _problem(
        client.post("/api/v1/hosts", json={"name": "<b>", "uri": "test:///default"}, headers=auth),
        422,
        "validation-failed",
    )
    _problem(
        client.post(
            "/api/v1/hosts", json={"name": "host-a", "uri": "test:///default"}, headers=auth
        ),
        409,
        "conflict",
    )
    resp = client.post(
        "/api/v1/hosts",
        json={"name": "host-b", "uri": f"test://{nodes / 'host-b.xml'}"},
        headers=auth,
    )
    assert resp.status_code == 201 and resp.json()["status"] == "never-synced"
    sync = client.post("/api/v1/sync", json={"hosts": ["host-b"]}, headers=auth).json()
    assert sync["events"] == {"created": 1}


def test_openapi_and_docs(api: tuple[TestClient, str]) -> None:
    client, _ = api
    spec = client.get("/openapi.json").json()
    assert {
        "/api/v1/vms",
        "/api/v1/vms/{uuid}",
        "/api/v1/vms/{uuid}/metadata",
        "/api/v1/hosts",
        "/api/v1/events",
    } <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_a_page_is_counted_only_when_asked(api: tuple[TestClient, str]) -> None:
    """Issue 16 item 4: a count of the whole list cost more than the page, so a page answers
    its items and the next cursor; ``count=true`` adds the total, ``/vms/count`` counts alone."""
    client, _ = api
    first = client.get("/api/v1/vms", params={"limit": 10}).json()
    assert first["total"] is None and len(first["items"]) == 10
    later = {"limit": 10, "cursor": first["next_cursor"], "count": "true"}
    assert client.get("/api/v1/vms", params=later).json()["total"] == 253
    assert client.get("/api/v1/vms/count").json() == {"count": 253, "exact": True}
    shutoff = client.get("/api/v1/vms/count", params={"state": "shutoff"}).json()["count"]
    listed = client.get("/api/v1/vms", params={"state": "shutoff", "limit": 1000}).json()
    assert shutoff == len(listed["items"]) > 0


def test_an_estimated_count_is_postgresqls_plan_and_sqlite_counts(
    api: tuple[TestClient, str], inventory: Inventory
) -> None:
    client, _ = api
    inventory.db.analyze()  # the planner's statistics, as autovacuum keeps them
    body = client.get("/api/v1/vms/count", params={"estimate": True}).json()
    if inventory.db.backend == "sqlite":
        assert body == {"count": 253, "exact": True}
    else:
        assert body["exact"] is False and abs(body["count"] - 253) <= 25, body


def test_a_bad_count_filter_is_a_problem(api: tuple[TestClient, str]) -> None:
    client, _ = api
    _problem(client.get("/api/v1/vms/count", params={"state": "gone"}), 422, "validation-failed")
    maybe = client.get("/api/v1/vms/count", params={"estimate": "maybe"})
    _problem(maybe, 422, "validation-failed")
