"""What the busiest pages ask the database, statement by statement (the page-time benchmark,
benchmarks/bench_dashboard*.py, has the times): the VM list never counts every VM by host for
its host chooser, and the VM page reads a VM's disks, interfaces and snapshots in one
statement, not one each; the administrator's and the planning pages read the whole fleet
again only when the inventory changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.web.conftest import Demo, sign_in


@pytest.fixture(scope="module")
def client(demo: Demo) -> Iterator[TestClient]:
    with TestClient(demo.app, base_url="http://testserver") as c:
        sign_in(c, demo.token)
        yield c


def statements(demo: Demo, client: TestClient, path: str) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.split()))

    engine = demo.inv.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_the_vm_list_names_the_hosts_without_counting_their_vms(
    demo: Demo, client: TestClient
) -> None:
    seen = statements(demo, client, "/vms?state=running&sort=memory_mib&order=desc")
    assert any("FROM hosts" in s for s in seen)  # the host chooser is there
    assert not [s for s in seen if "GROUP BY" in s], seen


def test_the_vm_page_reads_the_devices_of_a_vm_in_one_statement(
    demo: Demo, client: TestClient
) -> None:
    uuid = demo.inv.list_vms(limit=1).items[0].uuid
    seen = statements(demo, client, f"/vms/{uuid}")
    devices = [s for s in seen if any(f"vms.{c}" in s for c in ("disks", "nics", "snapshots"))]
    assert len(devices) == 1, devices
    assert all(f"vms.{c}" in devices[0] for c in ("disks", "nics", "snapshots"))


def test_the_admin_and_planning_pages_read_the_whole_fleet_only_after_a_change(
    demo: Demo, client: TestClient
) -> None:
    """Reading the inventory whole (every VM with its host) is most of these pages' time: an
    unchanged inventory is answered from the fleet already read (the request service's
    LiveFleet, which counts its reads)."""
    live = demo.app.state.requests.fleet
    assert client.get("/admin").status_code == 200
    reads = live.reads
    for path in ("/admin", "/plan", "/plan?remove=" + demo.inv.list_hosts()[0].name):
        assert client.get(path).status_code == 200
    assert live.reads == reads
    vm = demo.inv.list_vms(limit=1).items[0]
    demo.inv.set_metadata(vm.uuid, {"purpose": "read me again"}, actor="test")
    assert client.get("/admin").status_code == 200
    assert live.reads == reads + 1


def test_the_ha_page_plans_on_the_fleet_already_read(demo: Demo, client: TestClient) -> None:
    """With no HA manager's stored plan, /ha computes the failover plan of the inventory's
    last sync: on the fleet the request service already read, so a view of an unchanged
    inventory reads no VM row; after a change, only the changed host's VMs are read."""
    live = demo.app.state.requests.fleet
    assert "computed now from the inventory" in client.get("/ha").text
    reads, hosts_read = live.reads, live.hosts_read
    seen = statements(demo, client, "/ha")
    assert live.reads == reads
    assert any("FROM vms" in s for s in seen)  # the fingerprint's question was asked
    assert not [s for s in seen if "vms.name" in s], seen  # and no VM was read
    vm = demo.inv.list_vms(limit=1).items[0]
    demo.inv.set_metadata(vm.uuid, {"purpose": "read me again"}, actor="test")
    assert "computed now from the inventory" in client.get("/ha").text
    assert (live.reads, live.hosts_read) == (reads + 1, hosts_read + 1)
