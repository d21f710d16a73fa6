"""Every host ranked for one VM (the planning page's table): the same decision as the
scheduler's, with every host accounted for once and each refusal the scheduler's reason."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.engines.planning import VM, Fleet, Placed, load_fleet
from corral.engines.planning.placement.ranking import rank_hosts
from corral.engines.planning.placement.scheduler import Scheduler
from corral.engines.planning.state import ClusterState
from tests.planning.strategies import fleets


def test_refused_hosts_carry_the_schedulers_reasons(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    vm = VM("avx", vcpus=2, memory_mib=1024, required_features=frozenset({"avx512"}))
    scheduler = Scheduler.default()
    state = ClusterState.from_fleet(fleet)
    ranked = rank_hosts(scheduler, state, vm)
    outcome = scheduler.decide(state, vm)
    assert isinstance(outcome, Placed) and ranked[0].host == outcome.host
    refused = {(r.host, r.rejected_by, r.reason) for r in ranked if r.rank is None}
    assert refused == {(r.host, r.filter, r.reason) for r in outcome.rejections.reasons}
    assert {r.rejected_by for r in ranked if r.rank is None} == {"cpu_compat"}
    passed = [r for r in ranked if r.rank is not None]
    assert [r.rank for r in passed] == [1, 2]
    assert all(r.total == sum(s for _, s in r.scores) for r in passed)
    assert [name for name, _ in passed[0].scores] == [
        w.name for w in scheduler.weighers if w.multiplier
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fleet=fleets(),
    vcpus=st.integers(1, 16),
    memory=st.integers(256, 65536),
    strategy=st.sampled_from(["spread", "stack"]),
)
def test_the_first_ranked_host_is_the_schedulers_choice(
    fleet: Fleet, vcpus: int, memory: int, strategy: str
) -> None:
    scheduler = Scheduler.default(strategy)
    state = ClusterState.from_fleet(fleet)
    vm = VM("new", vcpus=vcpus, memory_mib=memory)
    ranked = rank_hosts(scheduler, state, vm)
    outcome = scheduler.decide(state, vm)
    assert sorted(r.host for r in ranked) == sorted(state.host_names)  # each host once
    passed = [r for r in ranked if r.rank is not None]
    if isinstance(outcome, Placed):
        assert passed[0].host == outcome.host
        assert abs((passed[0].total or 0.0) - outcome.score) < 1e-9
        totals = [r.total or 0.0 for r in passed]
        assert totals == sorted(totals, reverse=True)
    else:
        assert passed == []
        assert all(r.rejected_by and r.reason for r in ranked)
