"""Hypothesis strategies: small fleets with backup budgets and windows, and policies to match."""

from __future__ import annotations

from hypothesis import strategies as st

from corral.engines.backup import (
    BackupInputs,
    BackupVM,
    IOBudget,
    Planner,
    Policy,
    TierPolicy,
    Window,
)

TIERS = ("gold", "silver", "bronze", "night", "rebuild")


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(st.integers(0, 23)) * 60
    length = draw(st.sampled_from([120, 240, 480, 720]))
    return Window(start, (start + length) % 1440)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    tiers = {
        "gold": TierPolicy(rpo_minutes=draw(st.sampled_from([60, 90, 120]))),
        "silver": TierPolicy(rpo_minutes=draw(st.sampled_from([240, 360, 720]))),
        "bronze": TierPolicy(rpo_minutes=draw(st.sampled_from([1440, 2880]))),
        "night": TierPolicy(rpo_minutes=1440, window=draw(windows())),
        "rebuild": TierPolicy(rebuild="from template"),
    }
    planner = Planner(
        job_mib_s=draw(st.sampled_from([10, 50, 100])),
        change_per_day=draw(st.sampled_from([0.01, 0.1, 0.5])),
        host_mib_s=draw(st.sampled_from([20, 100, 200])),
        datastore_mib_s=draw(st.sampled_from([50, 150, 400])),
    )
    return Policy(tiers=tiers, default_tier="silver", planner=planner, source="hypothesis")


@st.composite
def budgets(draw: st.DrawFn, name: str) -> IOBudget:
    extra = draw(st.lists(st.tuples(windows(), st.sampled_from([0, 30, 150, 500])), max_size=2))
    return IOBudget(name, draw(st.sampled_from([0, 20, 60, 200])), tuple(extra))


@st.composite
def fleets(draw: st.DrawFn) -> BackupInputs:
    n_hosts = draw(st.integers(1, 3))
    n_stores = draw(st.integers(1, 2))
    vms = tuple(
        BackupVM(
            name=f"vm{i}",
            host=f"h{draw(st.integers(0, n_hosts - 1))}",
            datastore=f"d{draw(st.integers(0, n_stores - 1))}",
            size_gib=draw(st.sampled_from([0.0, 10.0, 80.0, 500.0, 2000.0])),
            tier=draw(st.sampled_from((*TIERS, None))),
            change_gib_per_day=draw(st.sampled_from([None, 0.0, 5.0, 60.0, 800.0])),
        )
        for i in range(draw(st.integers(1, 9)))
    )
    hosts = tuple(draw(budgets(f"h{i}")) for i in range(n_hosts) if draw(st.booleans()))
    stores = tuple(draw(budgets(f"d{i}")) for i in range(n_stores) if draw(st.booleans()))
    return BackupInputs(vms, hosts, stores)
