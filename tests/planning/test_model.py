"""Fleet file loading: strict validation with errors naming the field and the entry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from corral.engines.planning import (
    Fleet,
    PowerState,
    Protection,
    fleet_from_mapping,
    fleet_from_records,
    fleet_to_records,
    load_fleet,
)
from corral.errors import NotFoundError, ValidationError

HOST = {"name": "H1", "cores": 3, "cpu_mhz": 3000, "memory_mib": 9216}
VM1 = {"name": "VM1", "host": "H1", "vcpus": 1, "memory_mib": 1024, "state": "running"}


def test_contract_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        "hosts:\n  - {name: H1, cores: 3, cpu_mhz: 3000, memory_mib: 9216}\n"
        "vms:\n  - {name: VM1, host: H1, vcpus: 1, memory_mib: 1024, state: running}\n"
        "  - {name: VM2, vcpus: 2, memory_mib: 512, state: shutoff}\n"
    )
    fleet = load_fleet(path)
    assert fleet.host("H1").cpu_capacity_mhz == 9000
    assert fleet.vm("VM1").host == "H1"
    assert fleet.vm("VM2").host is None
    assert fleet.vm("VM2").state is PowerState.shutoff
    assert fleet.vm("VM1").protection is Protection.restart


def test_json_fleet_file(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"hosts": [HOST], "vms": [VM1]}))
    assert load_fleet(path).vm("VM1").memory_mib == 1024


def test_every_fixture_loads(fleets_dir: Path) -> None:
    files = sorted(fleets_dir.glob("*.yaml"))
    assert files
    for f in files:
        assert isinstance(load_fleet(f), Fleet)


@pytest.mark.parametrize(
    ("vms", "message"),
    [
        ([{**VM1, "memory_mib": -5}], "vms[0].memory_mib must be a positive integer"),
        ([{**VM1, "vcpus": "two"}], "vms[0].vcpus must be a positive integer"),
        ([{**VM1, "host": "nowhere"}], "vms[0].host 'nowhere' is not a host"),
        ([VM1, dict(VM1)], "vms[1].name 'VM1' is a duplicate"),
        ([{**VM1, "state": "paused"}], "vms[0].state must be one of running|shutoff"),
        ([{**VM1, "protection": "gold"}], "vms[0].protection must be one of"),
        ([{**VM1, "cpu_reservation_mhz": -1}], "vms[0].cpu_reservation_mhz must be a non-negative"),
        ([{**VM1, "anti_affinity": [1]}], "vms[0].anti_affinity must be a list"),
        ([{**VM1, "profile": "nope"}], "vms[0].profile 'nope' is not defined"),
        ([{k: v for k, v in VM1.items() if k != "name"}], "vms[0].name must be a non-empty string"),
    ],
)
def test_bad_vm_entries_are_named(vms: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        fleet_from_mapping({"hosts": [HOST], "vms": vms})


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ({**HOST, "cores": 0}, r"hosts\[0\].cores must be a positive integer"),
        ({**HOST, "memory_mib": True}, r"hosts\[0\].memory_mib must be a positive integer"),
        ({**HOST, "features": "avx2"}, None),
        ({**HOST, "labels": ["x"]}, r"hosts\[0\].labels must be a mapping"),
    ],
)
def test_bad_host_entries_are_named(host: dict[str, object], message: str | None) -> None:
    if message is None:
        assert fleet_from_mapping({"hosts": [host]}).hosts[0].features == frozenset({"avx2"})
        return
    with pytest.raises(ValidationError, match=message):
        fleet_from_mapping({"hosts": [host]})


def test_duplicate_host_and_settings_errors() -> None:
    with pytest.raises(ValidationError, match=r"hosts\[1\].name 'H1' is a duplicate"):
        fleet_from_mapping({"hosts": [HOST, HOST]})
    with pytest.raises(ValidationError, match=r"settings\.cpu_allocation_ratio"):
        fleet_from_mapping({"hosts": [HOST], "settings": {"cpu_allocation_ratio": 0}})
    with pytest.raises(ValidationError, match="'hosts' must be a list"):
        fleet_from_mapping({"vms": []})


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_fleet(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts: [\n")
    with pytest.raises(ValidationError, match="not valid YAML"):
        load_fleet(bad)


def test_records_round_trip(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    again = fleet_from_mapping(fleet_to_records(fleet))
    assert again == fleet


def test_fleet_from_records_is_the_inventory_boundary() -> None:
    fleet = fleet_from_records([HOST], [VM1, {"name": "x", "vcpus": 1, "memory_mib": 64}])
    assert [v.name for v in fleet.vms] == ["VM1", "x"]
    with pytest.raises(ValidationError, match=r"vms\[0\].host"):
        fleet_from_records([], [VM1])
