"""Issue 10 items 2-4, the pure parts: approval rules as data, the quota check, placement with
the N+K reserve — each rule and each quota dimension on its own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from corral.domain.requests import QuotaDimension, Size
from corral.engines.approval import (
    Amounts,
    ApprovalRules,
    Booked,
    CapacityStatus,
    Decision,
    Facts,
    HABreach,
    Limits,
    check_quota,
    evaluate,
    load_rules,
    place_request,
)
from corral.engines.planning.model import Fleet
from corral.engines.planning.state import ClusterState
from corral.errors import ConfigError
from tests.requests.conftest import DATA

PLACED = place_request(
    ClusterState.from_fleet(Fleet((), ())), [], 0, Size(1, 1, 0), failures=0
)  # no VM asked: trivially placed


def facts(environment: str = "dev", cost: float = 50.0, **kw: object) -> Facts:
    base = Facts(environment, cost, "USD", (), PLACED)
    return replace(base, **kw)  # type: ignore[arg-type]


def rules() -> ApprovalRules:
    return load_rules(DATA / "rules.yaml")


def test_the_shipped_default_rules_load_and_say_what_the_issue_asks() -> None:
    r = load_rules()
    assert r.auto_approve is not None and r.auto_approve.max_monthly_cost == 500
    assert r.two_approvers.production and r.two_approvers.min_monthly_cost == 2000
    assert r.production == ("prod",) and r.ha_failures == 1


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("auto_approve: {max_monthly_cost: -1}\n", "auto_approve.max_monthly_cost"),
        ("surprise: 1\n", "surprise"),
        ("environments: [dev]\nproduction: [prod]\n", "production"),
        ("- a list\n", "mapping"),
    ],
)
def test_bad_rules_are_refused_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_rules(path)


def test_cheap_non_production_is_approved_automatically() -> None:
    ev = evaluate(rules(), facts("dev", 199.99))
    assert (ev.decision, ev.approvals_needed, ev.reasons) == (Decision.approve, 0, ())


def test_each_unmet_auto_approval_rule_gives_its_own_reason() -> None:
    ev = evaluate(rules(), facts("dev", 200.0))
    assert ev.decision is Decision.pending and ev.approvals_needed == 1
    assert [r.rule for r in ev.reasons] == ["auto_approve.cost", "approvals"]
    assert "200.00 USD" in ev.reasons[0].text
    off = evaluate(replace(rules(), auto_approve=None), facts("dev", 1.0))
    assert [r.rule for r in off.reasons] == ["auto_approve.off", "approvals"]


def test_production_needs_two_distinct_approvers() -> None:
    ev = evaluate(rules(), facts("prod", 10.0, approvers=frozenset({"ann"})))
    assert ev.decision is Decision.pending and ev.approvals_needed == 2
    assert [r.rule for r in ev.reasons] == ["two_approvers.production", "approvals"]
    assert ev.reasons[-1].text == "1 of 2 distinct approvals so far"
    done = evaluate(rules(), facts("prod", 10.0, approvers=frozenset({"ann", "arno"})))
    assert done.decision is Decision.approve


def test_cost_above_the_threshold_needs_two_approvers_and_both_reasons_show() -> None:
    ev = evaluate(rules(), facts("prod", 1000.0))
    assert [r.rule for r in ev.reasons] == [
        "two_approvers.production",
        "two_approvers.cost",
        "approvals",
    ]
    dev = evaluate(rules(), facts("dev", 1500.0, approvers=frozenset({"ann"})))
    assert dev.approvals_needed == 2 and dev.decision is Decision.pending


def test_one_reason_per_exceeded_quota_limit() -> None:
    limits = Limits(vcpus=10, memory_mib=8192, storage_gb=100, vms=3, monthly_cost=300)
    used = Amounts(vcpus=8, memory_mib=4096, storage_gb=50, vms=2, monthly_cost=100)
    every = check_quota(limits, used, Amounts(4, 8192, 60, 2, 250))
    assert [b.dimension for b in every] == list(QuotaDimension)
    ev = evaluate(rules(), facts(quota=every))
    assert ev.decision is Decision.deny
    assert [r.rule for r in ev.reasons] == [f"quota.{d.value}" for d in QuotaDimension]
    assert "8 used + 4 requested exceeds the limit of 10 vCPUs" in ev.reasons[0].text


@pytest.mark.parametrize("dimension", list(QuotaDimension))
def test_each_quota_dimension_alone(dimension: QuotaDimension) -> None:
    limits = Limits(**{dimension.value: 10.0})
    assert check_quota(limits, Amounts(), Amounts(**{dimension.value: 10.0})) == ()
    over = check_quota(limits, Amounts(**{dimension.value: 4.0}), Amounts(**{dimension.value: 7}))
    assert [(b.dimension, b.used, b.requested, b.limit) for b in over] == [
        (dimension, 4.0, 7.0, 10.0)
    ]


def test_a_request_is_checked_only_on_the_dimensions_it_increases() -> None:
    """ManageIQ's complaint: adding a disk was refused because memory was already over."""
    limits = Limits(memory_mib=1024, storage_gb=100)
    used = Amounts(memory_mib=4096, storage_gb=10)  # memory over (the quota was lowered)
    assert check_quota(limits, used, Amounts(storage_gb=50)) == ()
    assert [b.dimension for b in check_quota(limits, used, Amounts(memory_mib=1))] == [
        QuotaDimension.memory_mib
    ]


def test_placement_keeps_the_n_plus_k_reserve_and_names_the_host_that_breaks_it(
    fleet: Fleet,
) -> None:
    base = ClusterState.from_fleet(fleet)
    fits = place_request(base, [], 2, Size(8, 16384, 0), failures=1)
    assert fits.status is CapacityStatus.placed and len({s.host for s in fits.slots}) == 2
    # 46 vCPUs are free above the reserve: 6 x 8 = 48 eats into it with the sixth VM.
    breaks = place_request(base, [], 6, Size(8, 16384, 0), failures=1)
    assert breaks.status is CapacityStatus.breaks_ha and len(breaks.slots) == 6
    assert breaks.ha_host == breaks.slots[5].host
    assert "N+1 reserve" in breaks.reasons[0] and breaks.reasons[0].startswith("vm-6 on ")
    never = place_request(base, [], 1, Size(32, 1024, 0), failures=1)
    assert never.status is CapacityStatus.unschedulable
    assert never.reasons[0].startswith("vm-1 fits on no host: hosts rejected by cores 4")
    too_big = place_request(base, [], 1, Size(1, 70000, 0), failures=1)
    assert too_big.status is CapacityStatus.unschedulable and "capacity 4" in too_big.reasons[0]


def test_booked_capacity_is_used_capacity(fleet: Fleet) -> None:
    base = ClusterState.from_fleet(fleet)
    booked = [Booked(h, 12, 1024) for h in ("h2", "h3", "h4")]
    only = place_request(base, booked, 1, Size(10, 1024, 0), failures=0)
    assert [s.host for s in only.slots] == ["h1"]  # the only host with 10 vCPUs left
    assert base.used.sum() == 2 + 4096  # the shared base state is left as it was


def test_breaking_n_plus_k_denies_or_goes_to_approvers_as_the_rules_say(fleet: Fleet) -> None:
    breaks = place_request(ClusterState.from_fleet(fleet), [], 6, Size(8, 16384, 0), failures=1)
    denied = evaluate(rules(), facts(capacity=breaks))
    assert denied.decision is Decision.deny and denied.reasons[0].rule == "ha_reserve"
    assert breaks.ha_host is not None and breaks.ha_host in denied.reasons[0].text
    asked = evaluate(replace(rules(), ha_breach=HABreach.approvers), facts(capacity=breaks))
    assert asked.decision is Decision.pending
    assert [r.rule for r in asked.reasons] == ["auto_approve.ha_reserve", "approvals"]
