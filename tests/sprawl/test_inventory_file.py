"""Plain inventory files: accepted shapes, and clear errors for bad ones."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from corral.engines.sprawl import VMState
from corral.engines.sprawl.inventory_file import load_inventory, parse_inventory
from corral.errors import ValidationError


def test_fixture_loads_with_aware_dates(fixtures: Path) -> None:
    inv = load_inventory(fixtures / "cost_inventory.yaml")
    assert len(inv.vms) == 8 and len(inv.hosts) == 3
    b = next(vm for vm in inv.vms if vm.uuid == "B")
    assert b.state is VMState.shutoff and b.snapshots[0].created_at is not None
    assert b.snapshots[0].created_at.tzinfo is UTC


def test_a_bare_list_of_vms_is_accepted() -> None:
    inv = parse_inventory([{"uuid": "x", "name": "x", "expiry": "2026-01-01"}])
    assert inv.vms[0].expiry is not None and inv.vms[0].expiry.tzinfo is UTC


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([{"uuid": "x", "name": "x", "ownr": "bob"}], "unknown key 'vms.0.ownr'"),
        ([{"uuid": "x", "name": "x", "vcpus": "many"}], "'vms.0.vcpus' is invalid"),
        ([{"uuid": "x", "name": "x", "state": "melted"}], "'vms.0.state' is invalid"),
        ([{"uuid": "x", "name": "x", "memory_mib": -1}], "negative size"),
        ({"vms": [], "hostz": []}, "unknown top-level key 'hostz'"),
        ("just text", "must be a list of VMs"),
    ],
)
def test_bad_inventory_is_one_clear_error(data: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_inventory(data, "inv.yaml")
    assert fragment in str(info.value)


def test_bad_syntax_file(tmp_path: Path) -> None:
    p = tmp_path / "inv.json"
    p.write_text("[{")
    with pytest.raises(ValidationError, match="not valid JSON at line 1"):
        load_inventory(p)
