"""The exact HA check at 10,000 hosts (issue 16): what makes it cheaper changes no answer.

- Pruning (a scenario proven safe by one host's room, or by combining single-host plans) gives
  the same report as simulating every scenario.
- The bound ``fits_on_one`` is sound: a scenario it calls safe restarts every protected VM.
- The model's per-class compatibility rows and per-host VM lists equal the brute-force ones
  (a VMs x hosts matrix and one scan per host before).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.engines.planning import VM, Fleet, Host, Settings
from corral.engines.planning.ha.exact import ExactPolicy
from corral.engines.planning.ha.failover import FailoverModel
from tests.planning.strategies import fleets

VERDICT = ("tolerated_host_failures", "failing_scenarios", "vms_not_coming_back")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(), k=st.integers(1, 3))
def test_pruned_exact_check_reports_what_simulating_every_scenario_reports(
    fleet: Fleet, k: int
) -> None:
    pruned = ExactPolicy(prune=True).evaluate(fleet, k).to_dict()
    simulated = ExactPolicy(prune=False).evaluate(fleet, k).to_dict()
    assert {key: pruned[key] for key in VERDICT} == {key: simulated[key] for key in VERDICT}
    assert pruned["scenarios_checked"] == simulated["scenarios_checked"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets())
def test_a_scenario_that_fits_on_one_host_restarts_every_vm(fleet: Fleet) -> None:
    model = FailoverModel.build(fleet)
    for k in (1, 2, 3):
        for combo in combinations(range(len(fleet.hosts)), k):
            if model.fits_on_one(combo):
                assert model.simulate(combo).ok, combo


def test_the_bound_proves_a_lightly_loaded_pair_safe_and_not_a_full_one() -> None:
    """Three hosts; two small VMs on each of h0 and h1; h2 is empty: h0 and h1 failing fit
    on h2. With h2 full, they do not fit on any one host (and the bound says nothing)."""
    hosts = tuple(Host(f"h{i}", cores=8, cpu_mhz=2600, memory_mib=16384) for i in range(3))
    small = [VM(f"v{i}", 1, 2048, host=f"h{i // 2}") for i in range(4)]
    light = Fleet(hosts, tuple(small), Settings())
    assert FailoverModel.build(light).fits_on_one((0, 1))
    full = light.with_vms([*small, VM("big", 4, 15000, host="h2")])
    assert not FailoverModel.build(full).fits_on_one((0, 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets())
def test_compatibility_rows_and_host_lists_equal_the_brute_force_ones(fleet: Fleet) -> None:
    model = FailoverModel.build(fleet)
    vms = {v.name: v for v in fleet.vms}
    for i, name in enumerate(model.vm_names):
        v = vms[name]
        expected = [
            h.threads >= v.vcpus
            and v.required_features <= h.features
            and (v.cpu_model is None or v.cpu_model == h.cpu_model)
            for h in fleet.hosts
        ]
        assert model.compat_rows[model.compat_class[i]].tolist() == expected
    for h in range(len(fleet.hosts)):
        assert model.by_host[h].tolist() == np.flatnonzero(model.vm_host == h).tolist()
