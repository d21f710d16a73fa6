"""A VM counts once, in its highest-value category; totals keep waste and governance apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.costing import CostModel
from corral.engines.sprawl import GOVERNANCE, Category, Evidence, Finding, analyse, dedupe
from corral.engines.sprawl.inventory_file import load_inventory


def _f(subject: str, cat: Category, held: float) -> Finding:
    return Finding(subject, subject, cat, cat.value, Evidence({}), 1.0, held, "act")


def test_highest_value_category_wins_and_others_are_remembered() -> None:
    out = dedupe(
        [
            _f("vm1", Category.snapshot_sprawl, 5.0),
            _f("vm1", Category.powered_off, 40.0),
            _f("vm1", Category.lease_expired, 40.0),
            _f("vm2", Category.snapshot_sprawl, 2.0),
        ]
    )
    by = {f.subject: f for f in out}
    assert by["vm1"].category is Category.powered_off  # tie with lease_expired: rank decides
    assert by["vm1"].also_matched == (Category.lease_expired, Category.snapshot_sprawl)
    assert by["vm2"].category is Category.snapshot_sprawl and by["vm2"].also_matched == ()


def test_waste_beats_governance_even_when_governance_holds_more() -> None:
    (kept,) = dedupe([_f("vm", Category.no_owner, 100.0), _f("vm", Category.snapshot_sprawl, 3.0)])
    assert kept.category is Category.snapshot_sprawl
    assert kept.also_matched == (Category.no_owner,)


def test_analysis_counts_each_vm_once(fixtures: Path, hand_model: CostModel) -> None:
    inv = load_inventory(fixtures / "detectors_inventory.yaml")
    assert inv.now is not None
    result = analyse(inv.vms, inv.now, hand_model, hosts=inv.hosts, volumes=inv.volumes)
    subjects = [f.subject for f in result.findings]
    assert len(subjects) == len(set(subjects))
    combo = next(f for f in result.findings if f.subject == "off-expired-snap")
    assert combo.category is Category.powered_off
    assert set(combo.also_matched) == {
        Category.lease_expired,
        Category.snapshot_sprawl,
        Category.no_owner,
    }
    summary = result.summary()
    waste = sum(f.monthly_cost_held for f in result.findings if f.category not in GOVERNANCE)
    assert result.monthly_waste == pytest.approx(waste)
    assert summary["reclaimable_monthly"] == pytest.approx(round(waste, 2))
    assert summary["by_category"]["no_owner"]["count"] == 2  # no-owner, owner-na
    # freed: expired VM (1 vCPU, 1 GiB); off-expired-snap's 100 GB disk + 30 GB snapshot;
    # orphans 200 + 40 GB; offending snapshots 10 + 3 + 150 GB
    assert (summary["reclaimable_vcpus"], summary["reclaimable_memory_gib"]) == (1, 1.0)
    assert summary["reclaimable_storage_gb"] == pytest.approx(130 + 240 + 163)
    # no metrics at all: right-sizing says so for every running VM instead of guessing
    running = [vm for vm in inv.vms if vm.powered_on]
    assert len(result.rightsizing_insufficient) == len(running)
    assert not result.rightsizing


findings_strategy = st.lists(
    st.builds(
        _f,
        st.sampled_from(["vm1", "vm2", "vm3", "/pool/x.qcow2"]),
        st.sampled_from(list(Category)),
        st.floats(0, 1000, allow_nan=False),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(findings_strategy)
def test_dedupe_properties(findings: list[Finding]) -> None:
    kept = dedupe(findings)
    subjects = [f.subject for f in kept]
    assert len(subjects) == len(set(subjects)) == len({f.subject for f in findings})
    for k in kept:
        group = [f for f in findings if f.subject == k.subject]
        waste = [f for f in group if f.category not in GOVERNANCE]
        pool = waste or group  # waste first, then the most money within it
        # amounts equal to 1e-6 are a tie, settled by category rank
        assert k.monthly_cost_held >= max(f.monthly_cost_held for f in pool) - 1e-6
        assert k.category in {f.category for f in pool}
        assert k.category not in k.also_matched
        assert set(k.also_matched) | {k.category} == {f.category for f in group}
