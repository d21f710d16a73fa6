"""The five warning signs on hand-made fleets: every status, including cannot-tell."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from corral.engines.costing import (
    ComplianceStatus,
    LicenceReport,
    LicenceScope,
    LicenceUsage,
    LicensingSuggestion,
)
from corral.reports.scorecard import (
    BackupCoverage,
    GovernedVM,
    ScorecardInputs,
    ScorecardThresholds,
    Sign,
    Status,
    Template,
    scorecard,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LEASE = NOW + timedelta(days=90)


def tidy(n: int = 20, **kw: object) -> list[GovernedVM]:
    """``n`` well-kept VMs: owner, purpose, lease, protection tier, running on reachable hosts."""
    vm = GovernedVM("vm", "alice", "web", LEASE, "restart", True, NOW, True, 50.0)
    return [replace(vm, name=f"vm-{i}", **kw) for i in range(n)]  # type: ignore[arg-type]


def usage(product: str, status: ComplianceStatus, deployed: int = 3) -> LicenceUsage:
    return LicenceUsage(product, LicenceScope.vm, "windows-server", deployed, 4, status, 90.0)


def signs(inputs: ScorecardInputs, limits: ScorecardThresholds | None = None) -> dict[str, Sign]:
    return {s.key: s for s in scorecard(inputs, limits)}


def test_a_tidy_fleet_is_ok_where_it_can_tell_and_says_where_it_cannot() -> None:
    ok_licences = LicenceReport((usage("win", ComplianceStatus.ok),), ())
    result = signs(
        ScorecardInputs(
            NOW,
            tidy(),
            templates=[Template("t", NOW - timedelta(days=10))],
            licences=ok_licences,
            fleet_monthly_cost=1000.0,
            monthly_waste=50.0,
        )
    )
    assert [s.number for s in result.values()] == [1, 2, 3, 4, 5]
    assert result["policy"].status is Status.ok
    assert result["inventory"].status is Status.ok
    assert result["licence_cost"].status is Status.ok
    # Patch levels are invisible to the hypervisor, backup runs are not known yet.
    assert result["updates"].status is Status.cannot_tell
    assert result["backup"].status is Status.cannot_tell
    assert "cannot" in result["updates"].based_on
    assert "not known yet" in result["backup"].based_on
    assert result["backup"].figures["disk_gb_to_back_up"] == 1000.0


def test_an_empty_fleet_cannot_tell_anything() -> None:
    result = signs(ScorecardInputs(NOW, []))
    assert {k: s.status for k, s in result.items()} == {
        "policy": Status.cannot_tell,
        "updates": Status.cannot_tell,
        "inventory": Status.cannot_tell,
        "licence_cost": Status.cannot_tell,
        "backup": Status.cannot_tell,
    }


def test_policy_grades_the_weakest_field() -> None:
    # 18 of 20 with a lease (90%): between the alert (75%) and ok (95%) shares.
    vms = tidy(18) + tidy(2, expiry=None)
    sign = signs(ScorecardInputs(NOW, vms))["policy"]
    assert sign.status is Status.warning
    assert sign.figures["with_lease_share"] == 0.9
    assert sign.figures["with_owner_share"] == 1.0
    assert sign.figures["fully_tagged_vms"] == 18
    # 10 of 20 without a purpose: alert.
    vms = tidy(10) + tidy(10, purpose="  ")
    assert signs(ScorecardInputs(NOW, vms))["policy"].status is Status.alert
    # A stricter threshold turns the first fleet into an alert.
    strict = ScorecardThresholds(policy_alert_share=0.95)
    vms = tidy(18) + tidy(2, expiry=None)
    assert signs(ScorecardInputs(NOW, vms), strict)["policy"].status is Status.alert


def test_updates_counts_what_missed_patch_cycles() -> None:
    vms = (
        tidy(3)
        + tidy(2, powered_on=False, state_since=NOW - timedelta(days=45))
        + tidy(1, powered_on=False, state_since=NOW - timedelta(days=5))
    )
    templates = [
        Template("old", NOW - timedelta(days=400)),
        Template("new", NOW - timedelta(days=20)),
        Template("unknown", None),
    ]
    sign = signs(ScorecardInputs(NOW, vms, templates=templates))["updates"]
    assert sign.status is Status.cannot_tell
    assert sign.figures == {
        "powered_off_over_30d": 2,
        "templates": 3,
        "templates_older_than_180d": 1,
        "templates_of_unknown_age": 1,
    }


def test_inventory_warning_and_alert() -> None:
    # Everything accounted for, but one orphaned disk: warning.
    sign = signs(ScorecardInputs(NOW, tidy(), orphaned_disks=1, orphaned_disk_gb=20.0))["inventory"]
    assert sign.status is Status.warning
    # One unreachable host, VMs fine otherwise: warning (their facts may be stale).
    vms = tidy(49) + tidy(1, host_reachable=False)
    sign = signs(ScorecardInputs(NOW, vms, hosts_unreachable=1))["inventory"]
    assert (sign.status, sign.figures["vms_on_unreachable_hosts"]) == (Status.warning, 1)
    # 3 of 20 without an owner (15% > 10%): alert.
    vms = tidy(17) + tidy(3, owner=None)
    sign = signs(ScorecardInputs(NOW, vms))["inventory"]
    assert (sign.status, sign.figures["without_owner_or_purpose"]) == (Status.alert, 3)
    assert sign.figures["unaccounted_share"] == 0.15


def test_licence_and_cost() -> None:
    over = LicenceReport((usage("win-std", ComplianceStatus.over, 5),), ())
    sign = signs(ScorecardInputs(NOW, tidy(), licences=over, fleet_monthly_cost=1000.0))[
        "licence_cost"
    ]
    assert (sign.status, sign.figures["over_deployed_products"]) == (Status.alert, "win-std")
    # Compliant, but waste is 15% of the cost: warning; 30%: alert.
    ok = LicenceReport((usage("win-std", ComplianceStatus.ok),), ())
    base = ScorecardInputs(NOW, tidy(), licences=ok, fleet_monthly_cost=1000.0)
    assert signs(replace(base, monthly_waste=150.0))["licence_cost"].status is Status.warning
    sign = signs(replace(base, monthly_waste=300.0))["licence_cost"]
    assert (sign.status, sign.figures["waste_share_of_cost"]) == (Status.alert, 0.3)
    # A cheaper per-host licence is a warning even with no waste.
    move = LicensingSuggestion("h1", "windows-server", 4, "win-std", 120.0, "win-dc", 60.0)
    sign = signs(replace(base, licences=LicenceReport(ok.usage, (move,))))["licence_cost"]
    assert (sign.status, sign.figures["cheaper_licensing_monthly"]) == (Status.warning, 60.0)
    assert "no VM has its guest OS recorded" in sign.based_on


def test_backup_tiers() -> None:
    vms = tidy(19) + tidy(1, protection_tier=None)
    sign = signs(ScorecardInputs(NOW, vms))["backup"]
    assert (sign.status, sign.figures["without_protection_tier"]) == (Status.warning, 1)
    vms = tidy(15) + tidy(3, protection_tier=None) + tidy(2, protection_tier="none")
    sign = signs(ScorecardInputs(NOW, vms))["backup"]
    assert sign.status is Status.alert
    assert (sign.figures["explicitly_unprotected"], sign.figures["vms_to_back_up"]) == (2, 15)


def planned(uncovered: int, to_back_up: int = 10, rebuilt: int = 2) -> BackupCoverage:
    """A plan's coverage: ``uncovered`` of ``to_back_up`` VMs miss their RPO (all no-room)."""
    return BackupCoverage(
        vms=to_back_up + rebuilt,
        rebuilt=rebuilt,
        uncovered=uncovered,
        changes_too_fast=0,
        no_room=uncovered,
        no_host=0,
        daily_gib=120.0,
        daily_budget_gib=1000.0,
        source="fleet.yaml",
    )


def test_backup_sign_scored_from_the_plan() -> None:
    """With a backup plan the sign reads coverage, not tiers: any VM whose RPO no schedule
    meets is a warning, up to 10% of the VMs to back up (the edge itself), above it an alert."""
    untiered = tidy(5, protection_tier=None)  # tiers alone would say warning/alert
    sign = signs(ScorecardInputs(NOW, untiered, backup=planned(0)))["backup"]
    assert sign.status is Status.ok
    assert sign.figures["vms_to_back_up"] == 10 and sign.figures["rebuilt_from_template"] == 2
    assert (sign.figures["daily_backup_gib"], sign.figures["daily_host_budget_gib"]) == (
        120.0,
        1000.0,
    )
    assert "backup plan of the fleet.yaml" in sign.based_on
    sign = signs(ScorecardInputs(NOW, untiered, backup=planned(1)))["backup"]
    assert (sign.status, sign.figures["uncovered_share"]) == (Status.warning, 0.1)  # the edge
    assert sign.figures["uncovered_no_room"] == 1
    sign = signs(ScorecardInputs(NOW, untiered, backup=planned(2)))["backup"]
    assert (sign.status, sign.figures["without_backup_meeting_rpo"]) == (Status.alert, 2)
    # A looser threshold moves the edge: 1 of 10 uncovered is then ok.
    loose = ScorecardThresholds(uncovered_warning_share=0.1, uncovered_alert_share=0.5)
    assert signs(ScorecardInputs(NOW, untiered, backup=planned(1)), loose)["backup"].status is (
        Status.ok
    )
    # Every VM rebuilt from its template: nothing to back up, nothing to score.
    sign = signs(ScorecardInputs(NOW, untiered, backup=planned(0, 0)))["backup"]
    assert sign.status is Status.cannot_tell
