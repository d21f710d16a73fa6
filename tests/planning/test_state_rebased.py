"""The placement state updated from the hosts that changed equals the state built whole."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.planning import VM, Fleet
from corral.engines.planning.model import PowerState
from corral.engines.planning.state import ClusterState
from tests.planning.strategies import fleets


def _groups(state: ClusterState, which: str) -> dict[str, list[float]]:
    """A group's counts per host; a group counting nothing is no group."""
    groups = getattr(state, which)
    return {g: list(v) for g, v in groups.items() if v.any()}


def assert_same(got: ClusterState, want: ClusterState) -> None:
    assert got.fleet is want.fleet or got.fleet == want.fleet
    assert (got.host_names, got.index) == (want.host_names, want.index)
    assert np.array_equal(got.cap, want.cap) and np.array_equal(got.threads, want.threads)
    assert np.array_equal(got.used, want.used)
    assert got.placement == want.placement and got.vm_by_name == want.vm_by_name
    assert {h: s for h, s in got.by_host.items() if s} == {
        h: s for h, s in want.by_host.items() if s
    }
    assert _groups(got, "anti_affinity") == _groups(want, "anti_affinity")
    assert _groups(got, "affinity") == _groups(want, "affinity")
    assert np.allclose(got.host_profile, want.host_profile)
    assert np.array_equal(got.disabled, want.disabled)


@st.composite
def changed(draw: st.DrawFn, fleet: Fleet) -> Fleet:
    """The fleet after a re-read of some hosts: their VMs gone, resized, moved, stopped or
    started, new VMs on them; the VMs of the other hosts the very same objects."""
    names = [h.name for h in fleet.hosts]
    touched = set(draw(st.sets(st.sampled_from(names), max_size=len(names))))
    vms: list[VM] = []
    for vm in fleet.vms:
        if vm.host not in touched:
            vms.append(vm)
            continue
        what = draw(st.sampled_from(["keep", "drop", "resize", "move", "power"]))
        if what == "keep":
            vms.append(replace(vm))  # an equal VM read again: a new object
        elif what == "resize":
            vms.append(replace(vm, vcpus=vm.vcpus + 1, memory_mib=vm.memory_mib // 2))
        elif what == "move":
            vms.append(replace(vm, host=draw(st.sampled_from(names))))
        elif what == "power":
            off = vm.state is PowerState.running
            vms.append(replace(vm, state=PowerState.shutoff if off else PowerState.running))
    for i in range(draw(st.integers(0, 3)) if touched else 0):
        vms.append(VM(f"new{i}", 1, 512, host=draw(st.sampled_from(sorted(touched)))))
    return fleet.with_vms(vms)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), fleet=fleets())
def test_a_state_updated_from_the_changed_hosts_equals_one_built_whole(
    data: st.DataObject, fleet: Fleet
) -> None:
    base = ClusterState.from_fleet(fleet)
    after = data.draw(changed(fleet))
    got = base.rebased(after, whole_above=1.0)  # never falls back to building whole
    assert_same(got, ClusterState.from_fleet(after))
    assert got.reserve_cache is base.reserve_cache  # updated, not built again
    assert_same(base, ClusterState.from_fleet(fleet))  # the base state is left as it was


@given(fleet=fleets())
def test_other_hosts_or_settings_build_the_state_whole(fleet: Fleet) -> None:
    base = ClusterState.from_fleet(fleet)
    fewer = Fleet(fleet.hosts[1:], tuple(v for v in fleet.vms if v.host != fleet.hosts[0].name))
    tighter = replace(fleet, settings=replace(fleet.settings, cpu_allocation_ratio=0.5))
    for other in (fewer, tighter):
        got = base.rebased(other, whole_above=1.0)
        assert got.reserve_cache is not base.reserve_cache
        assert_same(got, ClusterState.from_fleet(other))
