"""Fleet-wide reads are set-based: the statements they send do not grow with the fleet.

Issue 16 found ``fleet_records`` and ``Inventory.export`` loading each VM's deferred disks and
snapshots with a query of its own (one query per VM: 100,000 round trips, 4x slower on
PostgreSQL). Each read below runs on a fleet of 6 VMs and on one of 24; the number of SQL
statements must be the same.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from corral.inventory.service import Inventory
from corral.reports.history import load_histories
from corral.services.records import fleet_records

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fleetgen import write_fleet

READS: dict[str, Callable[[Inventory, Path], Any]] = {
    "fleet_records": lambda inv, _tmp: fleet_records(inv),
    "load_histories": lambda inv, _tmp: load_histories(inv),
    "export": lambda inv, tmp: inv.export(tmp / "export", "csv"),
}


@contextmanager
def counting(inv: Inventory) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(inv.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(inv.db.engine, "before_cursor_execute", count)


def _statements(inv: Inventory, tmp: Path, read: str) -> int:
    with counting(inv) as seen:
        READS[read](inv, tmp)
    return len(seen)


@pytest.mark.parametrize("read", sorted(READS))
def test_fleet_wide_reads_send_as_many_statements_for_4x_the_vms(
    inventory: Inventory, tmp_path: Path, read: str
) -> None:
    folder = tmp_path / "fleet"
    for path in write_fleet(folder, 2, 3, seed=7):
        inventory.add_host(path.stem, f"test://{path}")
    inventory.sync()
    small = _statements(inventory, tmp_path, read)
    write_fleet(folder, 2, 12, seed=8)  # the same two hosts, now with 12 VMs each
    report = inventory.sync()
    assert report.count_of("created") == 24
    large = _statements(inventory, tmp_path, read)
    assert small == large, f"{read}: {small} statements for 6 VMs, {large} for 24 more"
