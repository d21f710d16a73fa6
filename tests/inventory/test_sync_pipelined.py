"""Issue 15: a sync takes each host's answer as it arrives, while the others are still read.

A VM new to Corral is created as soon as its host answers (on PostgreSQL its row is written
then). A VM listed by two hosts (mid-migration, or a copy left defined on the source) must
still end as exactly one row, held by the host the sync has always chosen: the host whose copy
runs; failing one, the first host by name. These tests make the two hosts answer in a known
order (a host of one VM answers long before one of 1,500, whose node file libvirt parses
first) and check the order they assume, so each case takes the path it names, on both stores.

A host that stops answering in the middle of the sync loses nothing: its VMs keep their last
known state, while the other hosts' changes are taken.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from corral.inventory.service import Inventory
from corral.inventory.sync import SyncReport
from corral.store import models as m
from tests.inventory.conftest import TEST_NS, domain, edit_node

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fleetgen import write_fleet

TWICE = "7e1c0000-0000-4000-8000-000000000001"  # the VM listed by both hosts
RUNSTATE = {"running": "1", "shutoff": "5"}
BIG = 1500  # VMs of the host that answers last


def _node(folder: Path, vms: int, twice_state: str | None, seed: int) -> Path:
    """A host of ``vms`` VMs of its own (benchmarks/fleetgen.py), and the VM listed twice in
    ``twice_state`` (unless None)."""
    (path,) = write_fleet(folder, 1, vms, seed=seed)
    if twice_state is not None:
        edit_node(path, lambda node: node.append(_twice(twice_state)))
    return path


def _twice(state: str) -> etree._Element:
    d = etree.Element("domain", type="test")
    for tag, text in (("name", "twice"), ("uuid", TWICE), ("memory", "512"), ("vcpu", "1")):
        etree.SubElement(d, tag).text = text
    etree.SubElement(etree.SubElement(d, "os"), "type").text = "hvm"
    etree.SubElement(d, f"{{{TEST_NS}}}runstate").text = RUNSTATE[state]
    return d


def _sync(inv: Inventory) -> tuple[SyncReport, list[str]]:
    """A sync of every host, and the order the hosts answered in."""
    answered: list[str] = []
    report = inv.sync(progress=lambda name, _done, _total: answered.append(name))
    return report, answered


def _rows(inv: Inventory, uuid: str) -> list[tuple[str | None, str, bool]]:
    """The rows of one VM: its host's name, its state, whether it is a tombstone."""
    with inv.db.session() as s:
        q = (
            select(m.Host.name, m.VM.state, m.VM.deleted_at.is_not(None))
            .outerjoin(m.Host, m.Host.id == m.VM.host_id)
            .where(m.VM.uuid == uuid)
        )
        return [tuple(r) for r in s.execute(q)]  # type: ignore[misc]


CASES = pytest.mark.parametrize(
    ("big", "states", "holder"),
    [
        # The early creation is taken back: "a" answers first with its shut-off copy, "b"
        # (its copy running) answers last and holds the VM.
        ("b", {"a": "shutoff", "b": "running"}, "b"),
        # The early creation stands: "b" answers first with the running copy.
        ("a", {"a": "shutoff", "b": "running"}, "b"),
        # No copy runs: the first host by name holds it, though it answers last.
        ("a", {"a": "shutoff", "b": "shutoff"}, "a"),
        # Both copies run: the later host by name holds it, though it answers first.
        ("a", {"a": "running", "b": "running"}, "b"),
    ],
)


def _two_hosts(inv: Inventory, tmp_path: Path, big: str, states: dict[str, str]) -> None:
    for name in ("a", "b"):
        path = _node(tmp_path / name, BIG if name == big else 0, states[name], ord(name))
        inv.add_host(name, f"test://{path}")


@CASES
def test_a_vm_two_hosts_list_ends_as_one_row_held_as_before(
    inventory: Inventory, tmp_path: Path, big: str, states: dict[str, str], holder: str
) -> None:
    _two_hosts(inventory, tmp_path, big, states)
    report, answered = _sync(inventory)
    assert answered == sorted(("a", "b"), key=lambda n: n == big)  # the order the case needs
    assert _rows(inventory, TWICE) == [(holder, states[holder], False)]
    created = [e for e in inventory.find_vm(TWICE).history if e.kind == "created"]
    assert [(e.host, e.details.get("host")) for e in created] == [(holder, holder)]
    with inventory.db.session() as s:
        assert s.scalar(select(func.count()).select_from(m.VM)) == BIG + 1
        assert s.scalar(select(func.count()).where(m.Event.kind == "created")) == BIG + 1
    changed = {h.host: h.vms_changed for h in report.hosts}
    assert changed == {n: (BIG if n == big else 0) + (n == holder) for n in ("a", "b")}
    assert report.count_of("created") == BIG + 1


@CASES
def test_the_holder_keeps_the_vm_on_the_next_syncs(
    inventory: Inventory, tmp_path: Path, big: str, states: dict[str, str], holder: str
) -> None:
    """The copy unchanged since the last sync (not read again) is judged by its stored state:
    a leftover copy never takes the VM back (it did on every other sync, with a stop and a
    start recorded each time)."""
    _two_hosts(inventory, tmp_path, big, states)
    _sync(inventory)
    for _ in range(2):
        report, _ = _sync(inventory)
        assert report.events == {}, report.events
        assert _rows(inventory, TWICE) == [(holder, states[holder], False)]


def test_a_host_that_stops_answering_mid_sync_loses_nothing(
    inventory: Inventory, tmp_path: Path
) -> None:
    paths = dict(zip("abc", write_fleet(tmp_path / "fleet", 3, 20), strict=True))
    for name, path in paths.items():
        inventory.add_host(name, f"test://{path}")
    first, _ = _sync(inventory)
    assert first.count_of("created") == 60
    before = {v.uuid: (v.host, v.state) for v in inventory.list_vms(limit=1000).items}
    b_vms = {u for u, (host, _) in before.items() if host == "b"}

    moved = domain(etree.parse(str(paths["b"])).getroot(), "h001-vm00003")  # b -> c
    edit_node(paths["c"], lambda n: n.append(moved))
    gone = domain(etree.parse(str(paths["a"])).getroot(), "h000-vm00007")
    edit_node(paths["a"], lambda n: n.remove(domain(n, "h000-vm00007")))
    paths["b"].write_text("<node><domain>")  # b's answer now fails: unreachable
    report, answered = _sync(inventory)

    assert sorted(answered) == ["a", "b", "c"]
    status = {h.host: h.status for h in report.hosts}
    assert status == {"a": "ok", "b": "unreachable", "c": "ok"}
    moved_uuid = moved.findtext("uuid")
    gone_uuid = gone.findtext("uuid")
    assert report.events == {"migrated": 1, "deleted": 1, "host-unreachable": 1}, report.events
    after = {v.uuid: (v.host, v.state) for v in inventory.list_vms(limit=1000).items}
    assert after[moved_uuid] == ("c", before[moved_uuid][1])
    assert gone_uuid not in after  # a tombstone now
    assert _rows(inventory, gone_uuid or "") == [("a", "running", True)]
    # b's other VMs are as they were, on b
    for vm in b_vms - {moved_uuid}:
        assert after[vm] == before[vm]
    assert set(after) == set(before) - {gone_uuid}
