"""How many host failures a fleet tolerates now, not capped at the N+K setting's K.

Properties on random fleets: every set of at most the answer's hosts failing has a restart
plan that the independent checker (tests/planning/invariants.py) finds valid and that
brings back every protected VM; one set of one host more loses a protected VM; the exact
admission policy asked for any K agrees (its figure is the answer capped at K); a budget
too small for the search gives a range that holds the answer.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.engines.planning import VM, Fleet, Host
from corral.engines.planning.ha.exact import ExactPolicy
from corral.engines.planning.ha.failover import FailoverModel, FailoverResult
from corral.engines.planning.ha.tolerance import tolerated_failures
from corral.engines.planning.model import Protection, Settings
from tests.planning.invariants import current_placement, violations
from tests.planning.strategies import fleets


def plain(fleet: Fleet) -> Fleet:
    """The fleet with no anti-affinity, CPU feature or reservation: every VM a simple one,
    so the bounds that prove a whole size at once apply (its placement stays valid)."""
    return fleet.with_vms(
        [
            replace(
                v,
                anti_affinity=(),
                required_features=frozenset(),
                cpu_reservation_mhz=0,
                memory_reservation_mib=0,
            )
            for v in fleet.vms
        ]
    )


#: Random fleets, half of them made of simple VMs only.
ANY_FLEET = st.one_of(fleets(), fleets().map(plain))


def restart_plan(model: FailoverModel, combo: tuple[int, ...]) -> FailoverResult:
    """The plan the exact policy stands on: the combined single-host plans when they
    combine, else the simulation's."""
    return model.survives(combo) or model.simulate(combo)


def check_survives(fleet: Fleet, model: FailoverModel, combo: tuple[int, ...]) -> None:
    result = restart_plan(model, combo)
    failed = {fleet.hosts[i].name for i in combo}
    assert result.ok, (failed, result.lost)
    assert not failed & set(result.plan.values())
    placement = {vm: h for vm, h in current_placement(fleet).items() if h not in failed}
    placement.update(result.plan)
    assert violations(fleet, placement, affinity=False) == []  # affinity: a preference here
    victims = {v for v, h in current_placement(fleet).items() if h in failed}
    assert set(result.plan) | set(result.unprotected) == victims


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=ANY_FLEET)
def test_any_k_hosts_failing_leave_room_and_one_more_does_not(fleet: Fleet) -> None:
    found = tolerated_failures(fleet)
    assert found.exact
    k, n = found.at_least, len(fleet.hosts)
    model = FailoverModel.build(fleet)
    assert 0 <= k <= n - 1
    if (model.used > model.cap + 1e-9).any():
        assert k == 0
        return
    for size in range(1, k + 1):
        for combo in combinations(range(n), size):
            check_survives(fleet, model, combo)
    if k < n - 1:
        assert any(
            not model.proven_safe(c) and not model.simulate(c).ok
            for c in combinations(range(n), k + 1)
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=ANY_FLEET)
def test_the_exact_policy_gives_the_same_figure_capped_at_its_k(fleet: Fleet) -> None:
    found = tolerated_failures(fleet).at_least
    for asked in range(len(fleet.hosts)):
        report = ExactPolicy(domains=False).evaluate(fleet, asked)
        assert report.tolerated_host_failures == min(found, asked), asked


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=ANY_FLEET, budget=st.integers(0, 12))
def test_a_small_budget_gives_a_range_that_holds_the_answer(fleet: Fleet, budget: int) -> None:
    exact = tolerated_failures(fleet).at_least
    bounded = tolerated_failures(fleet, budget=budget)
    assert bounded.at_least <= exact <= bounded.at_most
    assert bounded.scenarios <= budget


def roomy_fleet(hosts: int, k: int) -> Fleet:
    """``hosts`` hosts of 64 GiB, each running one protected 4 GiB VM."""
    return Fleet(
        tuple(Host(f"h{i}", cores=16, cpu_mhz=2600, memory_mib=65536) for i in range(hosts)),
        tuple(
            VM(f"v{i}", 2, 4096, host=f"h{i}", protection=Protection.restart) for i in range(hosts)
        ),
        Settings(ha_host_failures=k),
    )


def test_beyond_the_configured_k_and_without_enumerating_large_fleets() -> None:
    found = tolerated_failures(roomy_fleet(6, 1))  # one survivor holds the six VMs
    assert (found.at_least, found.exact) == (5, True)
    assert ExactPolicy().evaluate(roomy_fleet(6, 1), 1).tolerated_host_failures == 1
    # 400 hosts: C(400, k) sets for every k, none enumerated, the bounds proving a range.
    # A survivor takes 15 VMs (60 GiB free): k fail when 15 x (400 - k) < k, from k = 376
    large = tolerated_failures(roomy_fleet(400, 1), budget=1000)
    assert large.scenarios == 0 and large.at_most == 375
    assert 300 < large.at_least <= 375 and not large.exact


def test_memory_for_exactly_two_failed_hosts() -> None:
    """Four 16 GiB hosts each run an 8 GiB protected VM: 8 GiB free each, 32 GiB free in all.
    Two failing leave 16 GiB free for 16 GiB of VMs; three leave 8 GiB for 24 GiB."""
    fleet = Fleet(
        tuple(Host(f"h{i}", cores=16, cpu_mhz=2600, memory_mib=16384) for i in range(4)),
        tuple(VM(f"v{i}", 2, 8192, host=f"h{i}", protection=Protection.restart) for i in range(4)),
        Settings(ha_host_failures=1),
    )
    found = tolerated_failures(fleet)
    assert (found.at_least, found.at_most) == (2, 2)
