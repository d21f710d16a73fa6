"""Issue 16: ``GET /hosts``, ``/networks`` and ``/volumes`` page by keyset in the database.

On both databases: walking the next cursors gives the one-pass list (the CLI's and the
export's) exactly, in its order, shared storage counted once; rows added between two pages
never make a row repeat or vanish; filters and counts are the list's; a cursor of another
list is a clear 422.
"""

from __future__ import annotations

import random
import uuid as uuidlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.api.pagination import encode_cursor
from corral.inventory.service import Inventory
from corral.inventory.views import as_row
from corral.security.token_store import TokenStore
from corral.services.users import UserService
from corral.store import models as m
from corral.store.network_users import recount
from tests.rows import vm_row

NOW = datetime(2026, 3, 1, tzinfo=UTC)
#: Two storages every third host shares (an NFS export, a shared folder); the rest local.
SHARED = ("source:netfs:nas:/export", "path:dir:/srv/shared:1000")


@pytest.fixture
def client(inventory: Inventory) -> TestClient:
    UserService(inventory.db).add("tests", roles=["admin"])
    token = TokenStore(inventory.db).create("tests", "tests")
    return TestClient(create_app(inventory), headers={"Authorization": f"Bearer {token}"})


def _host(s: Any, name: str) -> m.Host:
    host = m.Host(name=name, uri="test:///default", status="ok", created_at=NOW)
    s.add(host)
    s.flush()
    return host


def _vm(s: Any, host: m.Host, name: str, nics: list[dict[str, str]], *, gone: bool) -> str:
    vm = vm_row(name, NOW, host_id=host.id, nics=nics, deleted_at=NOW if gone else None)
    s.add(vm)
    return vm.uuid


def _fleet(inv: Inventory, seed: int, hosts: int = 23) -> None:
    """Hosts in a shuffled order, each with networks (some on a bridge), VMs on them, and
    pools: local ones, and shared ones whose volumes every sharing host lists again."""
    rng = random.Random(seed)
    names = [f"h{i:03d}" for i in range(hosts)]
    rng.shuffle(names)
    with inv.db.session() as s:
        for i, name in enumerate(names):
            host = _host(s, name)
            nets = [("default", "virbr0"), ("lab", f"br{i}"), (f"n{rng.randrange(9)}", None)]
            for net, bridge in dict((n, b) for n, b in nets).items():
                s.add(
                    m.Network(
                        host_id=host.id,
                        name=net,
                        uuid=str(uuidlib.uuid4()),
                        active=True,
                        bridge=bridge,
                        forward_mode="nat",
                    )
                )
            users = []
            for k in range(rng.randrange(4)):
                nic = rng.choice(
                    [
                        {"type": "network", "source": "default"},
                        {"type": "bridge", "source": f"br{i}"},
                        {"type": "bridge", "source": "br-other", "network": "lab"},
                    ]
                )
                users.append(_vm(s, host, f"{name}-vm{k}", [nic], gone=rng.random() < 0.2))
            _pools(s, host, i, users, rng)
        recount(s, [h.id for h in s.query(m.Host)])  # VMs written here, not by a sync


def _pools(s: Any, host: m.Host, i: int, users: list[str], rng: random.Random) -> None:
    keys = [("images", f"path:dir:/var/lib/images-{i}:50")]
    if i % 3 == 0:
        keys += [(f"nas{i % 2}", SHARED[0]), ("shared", SHARED[1])]
    for pool_name, key in keys:
        pool = m.Pool(
            host_id=host.id,
            name=pool_name,
            uuid=str(uuidlib.uuid4()),
            type="dir",
            path="/p",
            active=True,
            capacity_bytes=1000,
            allocation_bytes=10,
            available_bytes=990,
            storage_key=key,
        )
        s.add(pool)
        s.flush()
        count = 6 if key in SHARED else rng.randrange(5)
        for k in range(count):
            vol = f"disk{k}.qcow2" if key in SHARED else f"{host.name}-{k}.qcow2"
            s.add(
                m.Volume(
                    pool_id=pool.id,
                    name=vol,
                    path=f"/mnt/{key}/{vol}",
                    capacity_bytes=100,
                    allocation_bytes=5,
                    used_by=users[k] if k < len(users) and key not in SHARED else None,
                    first_seen_at=NOW,
                )
            )


def _walk(
    client: TestClient,
    path: str,
    limit: int,
    params: dict[str, Any] | None = None,
    between: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for page in range(1000):
        query: dict[str, Any] = {"limit": limit, **(params or {})}
        if cursor:
            query["cursor"] = cursor
        resp = client.get(path, params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["total"] is None  # not counted unless asked
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items
        if between is not None:
            between(page)
    raise AssertionError("the cursor never ended")


LISTS: dict[str, tuple[str, Callable[[Inventory, bool], list[Any]], str]] = {
    "hosts": ("/api/v1/hosts", lambda inv, _: inv.list_hosts(), ""),
    "networks": (
        "/api/v1/networks",
        lambda inv, only: inv.list_networks(unused_only=only),
        "unused",
    ),
    "volumes": (
        "/api/v1/volumes",
        lambda inv, only: inv.list_volumes(orphaned_only=only),
        "orphaned",
    ),
}


def _json(rows: list[Any]) -> list[dict[str, Any]]:
    """The rows as the API writes them (times in UTC with a 'Z')."""
    return [{k: _utc_z(k, v) for k, v in as_row(r).items()} for r in rows]


def _utc_z(field: str, value: Any) -> Any:
    return value.replace("+00:00", "Z") if field.endswith("_at") and value else value


@pytest.mark.parametrize("listing", sorted(LISTS))
@pytest.mark.parametrize("limit", [1, 4, 100])
def test_walking_the_cursors_gives_the_one_pass_list(
    inventory: Inventory, client: TestClient, listing: str, limit: int
) -> None:
    _fleet(inventory, seed=limit)
    path, full, flag = LISTS[listing]
    for only in (False, True) if flag else (False,):
        whole = full(inventory, only)
        assert whole, "the fixture must give rows to page"
        walked = _walk(client, path, limit, {flag: "true"} if only else None)
        assert walked == _json(whole)
        counted = client.get(path, params={"limit": limit, "count": "true", flag or "x": only})
        assert counted.json()["total"] == len(whole)


def test_shared_storage_is_one_volume_on_every_page_size(
    inventory: Inventory, client: TestClient
) -> None:
    _fleet(inventory, seed=7)
    for limit in (1, 2, 5):
        vols = _walk(client, "/api/v1/volumes", limit)
        shared = [v for v in vols if v["shared"]]
        # 6 volumes on each of the two shared storages, each seen by every third host
        assert len(shared) == 12 and len({(v["path"]) for v in shared}) == 12
        assert all(v["hosts"] == sorted(v["hosts"]) and len(v["hosts"]) == 8 for v in shared)
        paths = [(v["path"], tuple(v["hosts"])) for v in vols]
        assert len(paths) == len(set(paths))


@pytest.mark.parametrize("listing", sorted(LISTS))
def test_rows_added_between_pages_neither_repeat_nor_hide_others(
    inventory: Inventory, client: TestClient, listing: str
) -> None:
    """After each page a host named before the cursor and one after it join the fleet
    (with their networks and volumes): every row there at the start is seen exactly once,
    in order; the rows added after the cursor are seen too, those before it are not."""
    _fleet(inventory, seed=3, hosts=12)
    path, full, _ = LISTS[listing]
    before = _json(full(inventory, False))
    added: list[str] = []

    def grow(page: int) -> None:
        with inventory.db.session() as s:
            for name in (f"a{page:03d}", f"z{page:03d}"):
                host = _host(s, name)
                s.add(m.Network(host_id=host.id, name="default", uuid="u", active=True))
                _pools(s, host, 3001 + 3 * page, [], random.Random(page))  # local only
                added.append(name)

    walked = _walk(client, path, 3, between=grow)
    keys = [_key(listing, row) for row in walked]
    assert keys == sorted(keys) and len(keys) == len(set(keys))
    assert [r for r in walked if r[_host_field(listing)] not in added] == before
    field = _host_field(listing)
    seen_added = {r[field] for r in walked} & set(added)
    listed_added = {r[field] for r in _json(full(inventory, False))} & set(added)
    assert seen_added == {n for n in listed_added if n.startswith("z")}
    assert any(n.startswith("a") for n in listed_added)


def _host_field(listing: str) -> str:
    return "name" if listing == "hosts" else "host"


def _key(listing: str, row: dict[str, Any]) -> tuple[str, ...]:
    if listing == "hosts":
        return (row["name"],)
    if listing == "networks":
        return (row["host"], row["name"])
    return (row["host"], row["pool"], row["name"])


@pytest.mark.parametrize("listing", sorted(LISTS))
def test_a_cursor_of_another_list_is_a_clear_422(
    inventory: Inventory, client: TestClient, listing: str
) -> None:
    _fleet(inventory, seed=1, hosts=3)
    path = LISTS[listing][0]
    for key in (("a", "b", "c", "d"), (1,), (1, 2, 3)):
        resp = client.get(path, params={"cursor": encode_cursor(key)})
        assert resp.status_code == 422, resp.text
        assert resp.json()["code"] == "validation-failed"
    assert client.get(path, params={"cursor": "!!"}).status_code == 422


def test_a_network_counts_each_live_vm_with_a_nic_on_it_once(
    inventory: Inventory, client: TestClient
) -> None:
    """By its name in the NIC (whatever the NIC's type), as a type='network' NIC's source,
    or by the bridge a type='bridge' NIC is on; a VM with two NICs on one network is one
    user, a deleted VM none."""
    nic_on = {"type": "network", "source": "default"}
    with inventory.db.session() as s:
        host = _host(s, "solo")
        for name, bridge in (("default", "virbr0"), ("lab", "br-lab"), ("isolated", None)):
            s.add(m.Network(host_id=host.id, name=name, uuid=name, active=True, bridge=bridge))
        _vm(s, host, "a", [nic_on, dict(nic_on)], gone=False)
        _vm(s, host, "b", [{"type": "bridge", "source": "virbr0"}], gone=False)
        _vm(s, host, "c", [{"type": "bridge", "source": "br-lab"}], gone=False)
        _vm(s, host, "d", [{"type": "bridge", "source": "br0", "network": "lab"}], gone=False)
        _vm(s, host, "e", [{"type": "bridge", "source": "br-unknown"}], gone=False)
        _vm(s, host, "f", [nic_on], gone=True)
        recount(s, [host.id])
    users = {n["name"]: n["vms"] for n in _walk(client, "/api/v1/networks", 2)}
    assert users == {"default": 2, "lab": 2, "isolated": 0}
    unused = _walk(client, "/api/v1/networks", 1, {"unused": "true"})
    assert [n["name"] for n in unused] == ["isolated"]
