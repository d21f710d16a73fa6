"""Cost model arithmetic on hand-checked cases (see the comments in the fixture files)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from corral.engines.costing import (
    UNASSIGNED,
    ComplianceStatus,
    CostModel,
    Dimension,
    chargeback,
    default_cost_model_text,
    licence_report,
    load_cost_model,
    price_fleet,
    price_vm,
    rate_card,
)
from corral.engines.sprawl.inventory_file import Inventory, load_inventory
from corral.errors import ConfigError


@pytest.fixture(scope="module")
def inventory(fixtures: Path) -> Inventory:
    return load_inventory(fixtures / "cost_inventory.yaml")


def test_rate_card_from_reference_host(hand_model: CostModel) -> None:
    rates = rate_card(hand_model)
    assert rates.host_monthly == pytest.approx(200.0)
    assert rates.per_vcpu == pytest.approx(5.0)
    assert rates.per_gib == pytest.approx(1.0)
    assert rates.compute(2, 4096) == pytest.approx(14.0)


def test_monthly_cost_per_vm_hand_checked(hand_model: CostModel, inventory: Inventory) -> None:
    costs = price_fleet(inventory.vms, inventory.hosts, hand_model)
    expected = {"A": 80, "B": 66, "D": 79, "C": 37, "E": 57, "F": 57, "G": 57, "H": 97}
    assert {k: round(c.total, 6) for k, c in costs.items()} == expected
    a = costs["A"]
    assert (a.compute, a.storage, a.snapshots, a.platform) == pytest.approx((14, 10, 1, 3))
    assert (a.software, a.labour) == pytest.approx((7, 20))
    assert dict(a.licences) == {"win-std": 25}
    assert dict(costs["E"].licences) == {"win-dc": pytest.approx(20)}


def test_powered_off_vm_pays_storage_and_licences_not_compute(
    hand_model: CostModel, inventory: Inventory
) -> None:
    b = price_fleet(inventory.vms, inventory.hosts, hand_model)["B"]
    assert b.compute == 0
    assert b.storage == pytest.approx(10)
    assert b.snapshots == pytest.approx(1)
    assert b.licence_total == pytest.approx(25)


def test_unknown_host_spreads_per_host_licence_by_consolidation_ratio(
    hand_model: CostModel, inventory: Inventory
) -> None:
    lone = next(vm for vm in inventory.vms if vm.uuid == "H")
    cost = price_vm(replace(lone, host=None, licences=("win-dc",)), hand_model)
    assert dict(cost.licences) == {"win-dc": pytest.approx(6.0)}  # 60 / ratio 10


def test_chargeback_by_owner_and_department(hand_model: CostModel, inventory: Inventory) -> None:
    costs = price_fleet(inventory.vms, inventory.hosts, hand_model)
    by_owner = {
        r.key: (r.vms, round(r.total, 6)) for r in chargeback(inventory.vms, costs, Dimension.owner)
    }
    assert by_owner == {"alice": (2, 146), "bob": (2, 116), "carol": (3, 171), UNASSIGNED: (1, 97)}
    by_dept = chargeback(inventory.vms, costs, Dimension.department)
    rows = [(r.key, round(r.total, 6)) for r in by_dept]
    assert rows == [("dev", 287), ("ops", 146), (UNASSIGNED, 97)]  # largest first
    assert sum(r.total for r in by_dept) == pytest.approx(530)


def test_licence_compliance_and_cheaper_licensing(
    hand_model: CostModel, inventory: Inventory
) -> None:
    report = licence_report(inventory.vms, inventory.hosts, hand_model)
    usage = {u.product: u for u in report.usage}
    assert (usage["win-std"].deployed, usage["win-std"].status) == (3, ComplianceStatus.warn)
    assert (usage["win-dc"].deployed, usage["win-dc"].status) == (2, ComplianceStatus.over)
    assert usage["win-dc"].free == -1
    assert usage["hyp"].status is ComplianceStatus.untracked
    assert (usage["hyp"].deployed, usage["mgmt-agent"].deployed) == (3, 8)  # every host, every VM
    moves = {(s.host, s.current, s.suggested): s.monthly_saving for s in report.suggestions}
    assert moves == {
        ("h1", "win-std", "win-dc"): pytest.approx(15),
        ("h3", "win-dc", "win-std"): pytest.approx(35),
    }


def test_default_cost_model_loads_and_prices_a_typical_vm(default_model: CostModel) -> None:
    assert "Datacenter" in default_cost_model_text()
    rates = rate_card(default_model)
    # 20000/48 + 0.45 kW * 730 h * 1.6 * 0.12 + 200 platform support
    assert rates.host_monthly == pytest.approx(20000 / 48 + 0.45 * 730 * 1.6 * 0.12 + 200)
    assert rates.per_vcpu == pytest.approx(rates.host_monthly * 0.5 / (32 * 4 * 0.8))


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("bad_syntax.yaml", "not valid YAML at line"),
        ("bad_unknown_key.yaml", "unknown key 'storage.price_per_tb_month'"),
        ("bad_negative.yaml", "key 'per_vm_software.antivirus'"),
        ("bad_type.yaml", "key 'host.cores'"),
        ("bad_family.yaml", "key 'os_map.sles*'"),
    ],
)
def test_bad_cost_model_names_the_key(fixtures: Path, name: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_cost_model(fixtures / "costmodels" / name)
    assert fragment in str(info.value)
    assert name in str(info.value)


def test_missing_cost_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read cost model"):
        load_cost_model(tmp_path / "nope.yaml")
