"""The fleet summary worded from the inventory: VMs by name, and causing VMs that share a
project (their ownership metadata) named as that application: "the 2 VMs of batch-etl"."""

from __future__ import annotations

from pathlib import Path

from corral.engines.diagnosis import Cause, Diagnosis, Finding, summarize
from corral.inventory.service import Inventory
from corral.services import diagnosis
from tests.inventory.conftest import nodes  # noqa: F401  (fixture)

WEB = "0a000000-0000-4000-8000-000000000001"
DB = "0a000000-0000-4000-8000-000000000002"
OLD = "0a000000-0000-4000-8000-000000000003"
AT = 1_700_000_000.0


def _slowed(vm: str, culprits: tuple[str, ...]) -> Diagnosis:
    f = Finding(Cause.host_cpu_contention, "wait + steal", 2.0, AT - 1800, culprits)
    return Diagnosis(vm, "host-a", AT, 3600.0, (f,))


def test_culprits_of_one_project_are_named_as_the_application(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
) -> None:
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    for name in ("web-01", "db-01"):
        inventory.set_metadata(name, {"project": "batch-etl"})
    summary = summarize([_slowed(OLD, (WEB, DB)), _slowed("unknown-vm", (WEB, DB))])
    assert "cause: " + WEB in summary.groups[0].sentence  # before: ids only
    named = diagnosis.labelled(summary, inventory)
    sentence = named.groups[0].sentence
    assert sentence.startswith("2 VMs on host-a slowed by host CPU contention since ")
    assert sentence.endswith("; cause: the 2 VMs of batch-etl (old-build, unknown-vm)")
    names, projects = diagnosis.vm_labels(inventory, [WEB, OLD, "unknown-vm"])
    assert names == {WEB: "web-01", OLD: "old-build"} and projects == {WEB: "batch-etl"}
