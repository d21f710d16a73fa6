"""A sync round over a few hosts reads those hosts' rows, never the whole fleet's.

Issue 16: the poller syncs only the hosts whose read changed, yet each round loaded every host
and every VM UUID of the fleet, and judged every volume's user again. Here one host of a
fleet changes; the statements the round sends are recorded (SQLAlchemy's cursor event) on a
fleet of 2 hosts and on one with 8 hosts more: they must be the same statements, each
reading the fleet's tables through a WHERE, with no more values than the changed host holds.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import event

from corral.inventory.service import Inventory
from tests.inventory.conftest import domain, edit_node

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fleetgen import write_fleet

VMS_PER_HOST = 5
_READS = re.compile(r"\bFROM (vms|hosts|pools|volumes)\b(?P<rest>.*)", re.S)


def _grow_memory(path: Path, vm: str) -> None:
    def grow(node: Any) -> None:
        mem = domain(node, vm).find("memory")
        mem.text = str(int(mem.text) * 2)

    edit_node(path, grow)


def _one_host_round(inv: Inventory, path: Path, vm: str) -> list[tuple[str, Any]]:
    """Change one VM of the host at ``path``, sync that host alone; the statements sent."""
    _grow_memory(path, vm)
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    event.listen(inv.db.engine, "before_cursor_execute", record)
    try:
        report = inv.sync([path.stem])
    finally:
        event.remove(inv.db.engine, "before_cursor_execute", record)
    assert report.count_of("resized") == 1, report.events
    return sent


def _values(params: Any) -> int:
    """How many values a statement carries (all rows of an executemany)."""
    if isinstance(params, dict):
        return len(params)
    if isinstance(params, list | tuple):
        return sum(_values(p) if isinstance(p, list | tuple | dict) else 1 for p in params)
    return 0


def test_a_one_host_round_sends_the_same_statements_whatever_the_fleet(
    inventory: Inventory, tmp_path: Path
) -> None:
    small = write_fleet(tmp_path / "small", 2, VMS_PER_HOST, seed=7)
    for path in small:
        inventory.add_host(path.stem, f"test://{path}")
    inventory.sync()
    vm = f"h000-vm{0:05d}"
    before = _one_host_round(inventory, small[0], vm)

    for path in write_fleet(tmp_path / "large", 8, 4 * VMS_PER_HOST, seed=8):
        inventory.add_host(f"other-{path.stem}", f"test://{path}")
    created = inventory.sync().count_of("created")
    assert created == 8 * 4 * VMS_PER_HOST
    after = _one_host_round(inventory, small[0], vm)

    assert [s for s, _ in after] == [s for s, _ in before]
    for statement, params in after:
        read = _READS.search(statement)
        if read is not None and statement.lstrip().upper().startswith("SELECT"):
            assert "WHERE" in read["rest"], f"reads a whole table: {statement}"
        assert _values(params) <= VMS_PER_HOST + 2, (statement, params)


def test_the_cycle_collector_rests_during_a_sync_and_is_as_it_was_after(
    inventory: Inventory, tmp_path: Path
) -> None:
    import gc

    from corral.inventory.sync import SyncService

    (path,) = write_fleet(tmp_path / "one", 1, 2, seed=3)
    inventory.add_host(path.stem, f"test://{path}")
    during: list[bool] = []

    def connector(host: Any) -> Any:
        during.append(gc.isenabled())
        return inventory.connector(host)

    def sync() -> None:
        SyncService(inventory.db, connector, inventory.release, inventory.clock).sync()

    assert gc.isenabled()
    sync()
    assert during == [False] and gc.isenabled()
    gc.disable()  # someone else's choice: a sync leaves it so
    try:
        sync()
        assert not gc.isenabled()
    finally:
        gc.enable()
